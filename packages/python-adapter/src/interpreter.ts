import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { adapterError, PythonAdapterErrorCode } from './errors';

/** Where the interpreter came from. */
export type InterpreterSource = 'option' | 'venv' | 'TRESTLE_PYTHON' | 'VIRTUAL_ENV' | 'default';

/** The interpreter a worker runs. */
export interface Interpreter {
  readonly command: string;
  readonly source: InterpreterSource;
}

/**
 * Picks the interpreter: the `python` option, then the `venv` option (`<venv>/bin/python`), then
 * `TRESTLE_PYTHON`, then an active `VIRTUAL_ENV`, then `python3` on `PATH`.
 * @throws PythonAdapterError `PY_SPAWN_FAILED` when a venv has no interpreter.
 */
export function resolveInterpreter(
  options: { python?: string | undefined; venv?: string | undefined },
  env: NodeJS.ProcessEnv = process.env,
): Interpreter {
  if (options.python) return { command: options.python, source: 'option' };
  if (options.venv) return { command: venvPython(options.venv), source: 'venv' };
  if (env.TRESTLE_PYTHON) return { command: env.TRESTLE_PYTHON, source: 'TRESTLE_PYTHON' };
  if (env.VIRTUAL_ENV) {
    const candidate = venvPython(env.VIRTUAL_ENV, false);
    if (candidate) return { command: candidate, source: 'VIRTUAL_ENV' };
  }
  return { command: process.platform === 'win32' ? 'python' : 'python3', source: 'default' };
}

function venvPython(venv: string, strict?: true): string;
function venvPython(venv: string, strict: false): string | undefined;
function venvPython(venv: string, strict = true): string | undefined {
  const candidates =
    process.platform === 'win32'
      ? [path.join(venv, 'Scripts', 'python.exe')]
      : [path.join(venv, 'bin', 'python3'), path.join(venv, 'bin', 'python')];
  for (const candidate of candidates) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  if (!strict) return undefined;
  throw adapterError(
    PythonAdapterErrorCode.SpawnFailed,
    `venv '${venv}' has no interpreter (looked for ${candidates.join(', ')})`,
  );
}

/** The directory holding the `trestle_bridge` Python package (shipped in the npm package). */
export function pythonPackageDir(): string {
  // dist/index.js and src/*.ts both sit one level below the package root.
  return fileURLToPath(new URL('../python', import.meta.url));
}

/** The worker's environment: the host's, plus the protocol fds and the package on `PYTHONPATH`. */
export function workerEnv(
  base: NodeJS.ProcessEnv,
  extra: Record<string, string> | undefined,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...base, ...extra };
  const existing = env.PYTHONPATH;
  env.PYTHONPATH = existing ? `${pythonPackageDir()}${path.delimiter}${existing}` : pythonPackageDir();
  env.TRESTLE_FD_IN = '3';
  env.TRESTLE_FD_OUT = '4';
  env.TRESTLE_FD_CTL = '5';
  env.PYTHONUNBUFFERED = '1';
  env.PYTHONIOENCODING ??= 'utf-8';
  return env;
}
