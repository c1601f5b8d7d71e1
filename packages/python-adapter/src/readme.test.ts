import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasPython } from './test-support/bridge';

// The README's first snippet is meant to be copied and run: run it, against the build.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const snippet = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] as string)[0] as string;
const directory = mkdtempSync(join(tmpdir(), 'python-adapter-readme-'));

describe.runIf(hasPython())('README', () => {
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('runs the first example as written', () => {
    const file = join(directory, 'example.mjs');
    const dist = new URL('../dist/index.js', import.meta.url).href;
    writeFileSync(file, snippet.replaceAll("'@trestle/python-adapter'", `'${dist}'`));
    const output = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
    expect(output.split('\n').filter(Boolean)).toEqual(['4', '\\d+', '123', '_ _', '10', '11', '12']);
  });
});
