/** `py.call`, `py.method`, `py.attr`, `py.dir`, `py.release`. */
import type { Kwargs } from '@trestle/python-adapter';
import type { Ref } from '@trestle/ref-registry';
import { z } from 'zod';
import { type MethodTable, RpcMethodError } from '../contracts';
import { codeOf } from '../domain-errors';
import type { ServerSession } from '../sessions';
import { SUPPORT_MODULE } from '../tenants';
import { collectRefs, decodeInbound, decodeRefParam, encodeOutbound } from '../values';
import {
  argsSchema,
  type Domain,
  kwargsSchema,
  LIMITS,
  method,
  nameSchema,
  refSchema,
  timeoutSchema,
} from './shared';

/** A dotted Python name (what python-adapter accepts as a module). */
const DOTTED = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** The server's helper module is not callable by clients. @throws RpcMethodError `PY_FORBIDDEN` */
export function refuseInternal(module: string): void {
  if (module === SUPPORT_MODULE || module.startsWith(`${SUPPORT_MODULE}.`)) {
    throw new RpcMethodError('PY_FORBIDDEN', `module "${module}" is internal to the server`);
  }
}

/** Decodes call arguments and checks every ref in them against the session. */
export function decodeArguments(
  domain: Domain,
  record: ServerSession,
  args: readonly unknown[] | undefined,
  kwargs: Record<string, unknown> | undefined,
): { args: unknown[]; kwargs: Kwargs | undefined } {
  const a = decodeInbound(args === undefined ? [] : [...args], 'args');
  const k = kwargs === undefined ? undefined : decodeInbound(kwargs, 'kwargs');
  for (const ref of a.refs) domain.sessions.resolveRef(record, ref);
  for (const ref of k?.refs ?? []) domain.sessions.resolveRef(record, ref);
  if (k !== undefined && (typeof k.value !== 'object' || k.value === null || k.value instanceof Map)) {
    throw new RpcMethodError(
      'INVALID_PARAMS',
      'kwargs must be an object of names',
      { path: 'kwargs' },
      -32602,
    );
  }
  return { args: a.value as unknown[], kwargs: k?.value as Kwargs | undefined };
}

/** Decodes the `ref` param and checks it against the session. */
export function decodeRef(domain: Domain, record: ServerSession, wire: unknown, path = 'ref'): Ref {
  return domain.sessions.resolveRef(record, decodeRefParam(wire, path));
}

/** A Python result for the client: its refs noted and closable ones tracked as handles. */
export async function result(
  domain: Domain,
  record: ServerSession,
  value: unknown,
  signal: AbortSignal,
): Promise<{ value: unknown }> {
  const refs = collectRefs(value);
  if (refs.length > 0) {
    domain.sessions.noteRefs(record, refs);
    await domain.resources.adopt(record, refs, signal);
  }
  return { value: encodeOutbound(value) };
}

export function pyMethods(domain: Domain): MethodTable {
  const { sessions, config } = domain;
  const timeoutMs = timeoutSchema(config).optional();
  const target = z
    .object({ ref: refSchema.optional(), module: nameSchema.optional(), name: nameSchema })
    .refine((p) => (p.ref === undefined) !== (p.module === undefined), {
      message: 'give exactly one of ref and module',
      path: ['ref'],
    });

  return {
    'py.call': method(
      z.object({
        module: nameSchema,
        fn: nameSchema,
        args: argsSchema.optional(),
        kwargs: kwargsSchema.optional(),
        timeoutMs,
      }),
      async (params, context) => {
        const record = sessions.require(context.connection);
        refuseInternal(params.module);
        const { args, kwargs } = decodeArguments(domain, record, params.args, params.kwargs);
        const value = await sessions.metered(
          record,
          context.signal,
          (options) => record.python.call(params.module, params.fn, args, kwargs, options),
          params.timeoutMs,
        );
        return result(domain, record, value, context.signal);
      },
    ),

    'py.method': method(
      z.object({
        ref: refSchema,
        name: nameSchema,
        args: argsSchema.optional(),
        kwargs: kwargsSchema.optional(),
        timeoutMs,
      }),
      async (params, context) => {
        const record = sessions.require(context.connection);
        const ref = decodeRef(domain, record, params.ref);
        const { args, kwargs } = decodeArguments(domain, record, params.args, params.kwargs);
        const value = await sessions.metered(
          record,
          context.signal,
          (options) => record.python.method(ref, params.name, args, kwargs, options),
          params.timeoutMs,
        );
        return result(domain, record, value, context.signal);
      },
    ),

    'py.attr': method(target, async (params, context) => {
      const record = sessions.require(context.connection);
      let on: Ref | string;
      if (params.module !== undefined) {
        refuseInternal(params.module);
        on = params.module;
      } else {
        on = decodeRef(domain, record, params.ref);
      }
      const value = await sessions.metered(record, context.signal, (options) =>
        record.python.attr(on, params.name, options),
      );
      return result(domain, record, value, context.signal);
    }),

    'py.dir': method(
      z
        .object({ ref: refSchema.optional(), module: nameSchema.optional() })
        .refine((p) => (p.ref === undefined) !== (p.module === undefined), {
          message: 'give exactly one of ref and module',
          path: ['ref'],
        }),
      async (params, context) => {
        const record = sessions.require(context.connection);
        let names: unknown;
        if (params.module !== undefined) {
          const module = params.module;
          refuseInternal(module);
          if (!DOTTED.test(module)) {
            throw new RpcMethodError(
              'INVALID_PARAMS',
              `module must be a dotted Python name, got ${JSON.stringify(module)}`,
              { path: 'module' },
              -32602,
            );
          }
          if (!record.tenant.moduleAllowed(module)) {
            throw new RpcMethodError(
              'PY_FORBIDDEN',
              `module ${JSON.stringify(module)} is not in allow_modules`,
            );
          }
          names = await sessions.metered(record, context.signal, (options) =>
            record.python.call(SUPPORT_MODULE, 'dir_module', [module], undefined, options),
          );
        } else {
          const ref = decodeRef(domain, record, params.ref);
          names = await sessions.metered(record, context.signal, (options) =>
            record.python.call(SUPPORT_MODULE, 'dir_of', [ref], undefined, options),
          );
        }
        return { names: Array.isArray(names) ? names.filter((name) => typeof name === 'string') : [] };
      },
    ),

    'py.release': method(
      z.object({ refs: z.array(refSchema).min(1).max(LIMITS.refs) }),
      async (params, context) => {
        const record = sessions.require(context.connection);
        const live: Ref[] = [];
        params.refs.forEach((wire, index) => {
          try {
            live.push(decodeRef(domain, record, wire, `refs[${index}]`));
          } catch (error) {
            // Releasing what is already gone is not an error (idempotent); a foreign ref is.
            if (codeOf(error) !== 'REF_NOT_FOUND') throw error;
          }
        });
        for (const ref of live) {
          await domain.resources.discharge(record, ref);
          record.refTimes.delete(ref.id);
        }
        if (live.length > 0) await record.python.release(live);
        return { released: live.length };
      },
    ),
  };
}
