#!/usr/bin/env node
// Packs every publishable package, installs each tarball ALONE into a scratch npm project (with the
// tarballs of the workspace packages it depends on, as the registry would serve them) and imports
// every entry point of its `exports` map (except those needing an absent optional peer, which are
// checked for their files), so each package really works on its own.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(fileURLToPath(new URL('..', import.meta.url)));
const scratch = mkdtempSync(join(tmpdir(), 'trestle-pack-'));
let failures = 0;

/** Packages whose install must also *work*: the Python half shipped in the tarball really runs. */
const smokeTests = {
  '@trestle/python-adapter': `import { createPython } from '@trestle/python-adapter';
const py = createPython();
const value = await py.call('math', 'sqrt', [16]);
await py.close();
if (value !== 4) throw new Error('math.sqrt(16) gave ' + value);`,
  '@trestle/kernel-client': `import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelClient } from '@trestle/kernel-client';
import { createKernelServer } from '@trestle/kernel-client/server';
const path = join(mkdtempSync(join(tmpdir(), 'kcp-')), 'k.sock');
const daemon = createKernelServer({ methods: { PING: () => ({ pong: true }) } });
await daemon.listen({ path });
const client = new KernelClient({ enabled: true, endpoint: 'unix://' + path, mode: 'persistent' });
const result = await client.ping();
await client.close();
await daemon.close();
if (!result.success || result.payload.pong !== true) throw new Error('PING gave ' + JSON.stringify(result));`,
};
const smokeNames = {
  '@trestle/python-adapter': 'math.sqrt(16) in a worker started from the tarball',
  '@trestle/kernel-client': 'PING over a Unix socket, client and daemon from the tarball',
};

const packages = [];
for (const dir of readdirSync(join(root, 'packages'))) {
  const packageDir = join(root, 'packages', dir);
  const manifestPath = join(packageDir, 'package.json');
  if (!existsSync(manifestPath)) continue;
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  if (manifest.private) continue;
  const out = join(scratch, `out-${dir}`);
  execFileSync('pnpm', ['pack', '--pack-destination', out], { cwd: packageDir, stdio: 'pipe' });
  const tarball = join(
    out,
    readdirSync(out).find((file) => file.endsWith('.tgz')),
  );
  packages.push({ dir, manifest, tarball });
}
const tarballOf = new Map(packages.map((entry) => [entry.manifest.name, entry]));

/** The package's tarball and those of the workspace packages it depends on, transitively. */
function withWorkspaceDependencies(entry, seen = new Set()) {
  if (seen.has(entry.manifest.name)) return [];
  seen.add(entry.manifest.name);
  const list = [entry.tarball];
  for (const dependency of Object.keys(entry.manifest.dependencies ?? {})) {
    const local = tarballOf.get(dependency);
    if (local) list.push(...withWorkspaceDependencies(local, seen));
  }
  return list;
}

for (const entry of packages) {
  const { dir, manifest } = entry;
  const name = manifest.name;
  try {
    const project = join(scratch, `project-${dir}`);
    execFileSync('mkdir', ['-p', project]);
    writeFileSync(
      join(project, 'package.json'),
      JSON.stringify({ name: 'scratch', private: true, type: 'module' }),
    );
    execFileSync(
      'npm',
      ['install', '--no-audit', '--no-fund', '--prefer-offline', ...withWorkspaceDependencies(entry)],
      {
        cwd: project,
        stdio: 'pipe',
      },
    );
    const peers = Object.keys(manifest.peerDependencies ?? {});
    for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
      if (subpath === './package.json') continue;
      const specifier = subpath === '.' ? name : `${name}/${subpath.slice(2)}`;
      const files = typeof target === 'string' ? [target] : Object.values(target);
      for (const file of files) {
        if (!existsSync(join(project, 'node_modules', name, file)))
          throw new Error(`${specifier}: missing ${file}`);
      }
      const source = readFileSync(join(project, 'node_modules', name, target.default), 'utf8');
      const needsAbsentPeer = peers.some(
        (peer) =>
          new RegExp(`from ['"]${peer}['"]`).test(source) && !existsSync(join(project, 'node_modules', peer)),
      );
      if (needsAbsentPeer) {
        console.log(`ok   ${specifier} (files present; imports an optional peer not installed alone)`);
        continue;
      }
      const script = `const m = await import(${JSON.stringify(specifier)}); if (Object.keys(m).length === 0) throw new Error('no exports');`;
      execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: project, stdio: 'pipe' });
      console.log(`ok   ${specifier}`);
    }
    const smoke = smokeTests[name];
    if (smoke) {
      execFileSync(process.execPath, ['--input-type=module', '-e', smoke], { cwd: project, stdio: 'pipe' });
      console.log(`ok   ${name} works from the install (${smokeNames[name]})`);
    }
  } catch (error) {
    failures++;
    const detail = error.stderr ? error.stderr.toString() : error.message;
    console.error(`FAIL ${name}: ${detail}`);
  }
}
rmSync(scratch, { recursive: true, force: true });
if (failures > 0) {
  console.error(`pack check: ${failures} package(s) failed`);
  process.exit(1);
}
console.log('pack check: every package installs and imports on its own');
