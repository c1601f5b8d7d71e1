import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PythonAdapterError } from './errors';
import { resolveInterpreter, workerEnv } from './interpreter';

describe('interpreter selection', () => {
  const venv = mkdtempSync(join(tmpdir(), 'trestle-venv-'));
  mkdirSync(join(venv, 'bin'));
  writeFileSync(join(venv, 'bin', 'python3'), '#!/bin/sh\n', { mode: 0o755 });
  afterAll(() => rmSync(venv, { recursive: true, force: true }));

  it('option, then venv, then TRESTLE_PYTHON, then VIRTUAL_ENV, then python3', () => {
    const env = { TRESTLE_PYTHON: '/opt/py/bin/python3.12', VIRTUAL_ENV: venv };
    expect(resolveInterpreter({ python: '/usr/bin/python3.9', venv }, env)).toEqual({
      command: '/usr/bin/python3.9',
      source: 'option',
    });
    expect(resolveInterpreter({ venv }, env)).toEqual({
      command: join(venv, 'bin', 'python3'),
      source: 'venv',
    });
    expect(resolveInterpreter({}, env)).toEqual({
      command: '/opt/py/bin/python3.12',
      source: 'TRESTLE_PYTHON',
    });
    expect(resolveInterpreter({}, { VIRTUAL_ENV: venv })).toEqual({
      command: join(venv, 'bin', 'python3'),
      source: 'VIRTUAL_ENV',
    });
    expect(resolveInterpreter({}, {})).toEqual({ command: 'python3', source: 'default' });
  });

  it('a venv without an interpreter is a typed error naming where it looked', () => {
    const error = (() => {
      try {
        resolveInterpreter({ venv: join(venv, 'missing') }, {});
      } catch (caught) {
        return caught;
      }
    })();
    expect(PythonAdapterError.isInstance(error) && error.code).toBe('PY_SPAWN_FAILED');
    expect((error as Error).message).toContain(join(venv, 'missing', 'bin', 'python3'));
  });

  it('the worker environment extends PYTHONPATH and names the protocol fds', () => {
    const env = workerEnv({ PYTHONPATH: '/mine', HOME: '/h' }, { EXTRA: '1' });
    expect(env.PYTHONPATH?.split(':')).toHaveLength(2);
    expect(env.PYTHONPATH?.endsWith(':/mine')).toBe(true);
    expect([env.TRESTLE_FD_IN, env.TRESTLE_FD_OUT, env.TRESTLE_FD_CTL]).toEqual(['3', '4', '5']);
    expect(env.EXTRA).toBe('1');
    expect(env.HOME).toBe('/h');
  });
});
