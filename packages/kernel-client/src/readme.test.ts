import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

// The README's first snippet is meant to be copied and run: run it, against the build.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const snippet = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1] as string)[0] as string;
const packageDirectory = fileURLToPath(new URL('..', import.meta.url));
const dist = new URL('../dist/index.js', import.meta.url);
// Inside the package, so `zod` resolves from its node_modules.
const directory = mkdtempSync(join(packageDirectory, '.readme-'));

describe.runIf(existsSync(dist))('README', () => {
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('runs the first example as written', () => {
    const file = join(directory, 'example.mjs');
    const server = new URL('../dist/server.js', import.meta.url);
    writeFileSync(
      file,
      snippet
        .replaceAll("'@trestle/kernel-client/server'", `'${server.href}'`)
        .replaceAll("'@trestle/kernel-client'", `'${dist.href}'`),
    );
    const output = execFileSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
    expect(output.split('\n').filter(Boolean)).toEqual([
      'ok { pong: true }',
      '{ applied: true }',
      'error BAD_POLICY policy must be an object',
      'unavailable KERNEL_UNAVAILABLE 2',
    ]);
  });
});
