/**
 * Short temporary socket paths (a Unix socket path must fit `sun_path`: 107 bytes on Linux, 103 on
 * macOS, where `os.tmpdir()` is long). Test support only.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';

let counter = 0;

/** A fresh socket path under `os.tmpdir()` (or `/tmp` when that would not fit), unique to this process. */
export function tempSocketPath(tag = 'k'): string {
  const name = `tk-${tag}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2, 6)}.sock`;
  const path = join(tmpdir(), name);
  return Buffer.byteLength(path) <= 100 ? path : join('/tmp', name);
}
