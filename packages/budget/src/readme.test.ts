import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { hasRedis, REDIS_URL } from './test-support/redis';

// The README's first two snippets are meant to be copied and run: run them, against the build.
const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const snippets = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]!);
const dist = (file: string) => new URL(`../dist/${file}`, import.meta.url).href;
const directory = mkdtempSync(join(tmpdir(), 'budget-readme-'));

function runSnippet(name: string, source: string): string {
  const file = join(directory, `${name}.mjs`);
  writeFileSync(
    file,
    source
      .replaceAll("'@trestle/budget/redis'", `'${dist('redis.js')}'`)
      .replaceAll("'@trestle/budget'", `'${dist('index.js')}'`),
  );
  return execFileSync(process.execPath, [file], {
    encoding: 'utf8',
    env: { ...process.env, REDIS_URL },
    timeout: 20_000,
  });
}

describe('README snippets', () => {
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('runs the first example as written', () => {
    expect(runSnippet('quick-start', snippets[0]!)).toContain('ok, 995 left');
  });

  it.skipIf(!hasRedis)('runs the Redis example as written', () => {
    const output = runSnippet('redis', snippets.find((snippet) => snippet.includes('redisStore('))!);
    expect(output).toContain("kind: 'allowed'");
  });
});
