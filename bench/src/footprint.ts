/** Runs benchmark 3: one child process per subject (clean heap each), see footprint-child.ts. */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const FOOTPRINT_SUBJECTS = [
  { id: 'trestle-memory', label: 'trestle memoryStore() (default maxKeys 1e6)' },
  { id: 'trestle-memory-maxKeys-100k', label: 'trestle memoryStore({ maxKeys: 100_000 })' },
  { id: 'rlf-memory', label: 'rate-limiter-flexible RateLimiterMemory' },
  { id: 'floor-map', label: 'floor Map<string,{tokens,ts}>' },
] as const;

export interface FootprintRow {
  readonly id: string;
  readonly label: string;
  readonly keys: number;
  readonly held: number;
  readonly storeBytesPerKey: number;
  readonly withKeyStringsBytesPerKey: number;
  readonly keyStringBytesPerKey: number;
  readonly heapBytesPerKey: number;
  readonly externalBytesPerKey: number;
  readonly arrayBuffersBytesPerKey: number;
}

export type FootprintResult =
  | { readonly row: FootprintRow }
  | { readonly id: string; readonly error: string };

const childScript = fileURLToPath(new URL('./footprint-child.ts', import.meta.url));
const benchDir = fileURLToPath(new URL('..', import.meta.url));

function runChild(id: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--expose-gc', '--import', 'tsx', childScript, id],
      { cwd: benchDir, timeout: 30_000, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error) reject(new Error(`${error.message}\n${stderr}`));
        else resolve(stdout);
      },
    );
  });
}

export async function runFootprint(): Promise<FootprintResult[]> {
  const results: FootprintResult[] = [];
  for (const subject of FOOTPRINT_SUBJECTS) {
    try {
      const lines = (await runChild(subject.id)).trim().split('\n');
      const parsed = JSON.parse(lines[lines.length - 1]!) as Omit<FootprintRow, 'label'> & { error?: string };
      if (parsed.error) results.push({ id: subject.id, error: parsed.error });
      else results.push({ row: { ...parsed, label: subject.label } });
    } catch (error) {
      results.push({ id: subject.id, error: error instanceof Error ? error.message : String(error) });
    }
  }
  return results;
}
