import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// The README's first snippet is meant to be copied and run: run it, against the builds.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const snippet = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!)[0]!;
const directory = mkdtempSync(join(tmpdir(), 'bridge-readme-'));
const dist = (pkg: string) => new URL(`../../${pkg}/dist/index.js`, import.meta.url).href;

describe('README', () => {
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('runs the first example as written', () => {
    const file = join(directory, 'example.mjs');
    writeFileSync(
      file,
      snippet
        .replaceAll("'@trestle/bridge'", `'${dist('bridge')}'`)
        .replaceAll("'@trestle/budget'", `'${dist('budget')}'`)
        .replaceAll("'@trestle/ref-registry'", `'${dist('ref-registry')}'`),
    );
    const output = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
    expect(output.split('\n').filter(Boolean)).toEqual([
      '42 17',
      'basic',
      'closing report.csv',
      "[ 'gpu-buffer: no-discharger' ]",
      'logout session_released 1',
    ]);
  });
});
