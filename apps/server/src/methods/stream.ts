/** `py.stream`, `stream.credit`, `stream.cancel` (items arrive as `stream.items` notifications). */
import { z } from 'zod';
import type { MethodTable } from '../contracts';
import type { StreamSource } from '../streams';
import { decodeArguments, decodeRef, refuseInternal } from './py';
import { argsSchema, type Domain, kwargsSchema, LIMITS, method, nameSchema, refSchema } from './shared';

const streamIdSchema = z.string().min(1).max(64);

export function streamMethods(domain: Domain): MethodTable {
  const { sessions, streams } = domain;
  return {
    'py.stream': method(
      z
        .object({
          ref: refSchema.optional(),
          module: nameSchema.optional(),
          fn: nameSchema.optional(),
          args: argsSchema.optional(),
          kwargs: kwargsSchema.optional(),
          credit: z.number().int().min(0).max(LIMITS.credit).default(16),
        })
        .refine((p) => (p.ref !== undefined) !== (p.module !== undefined && p.fn !== undefined), {
          message: 'give either ref, or module and fn',
          path: ['ref'],
        })
        .refine((p) => p.ref === undefined || (p.args === undefined && p.kwargs === undefined), {
          message: 'args and kwargs go with module and fn, not with ref',
          path: ['args'],
        }),
      async (params, context) => {
        const record = sessions.require(context.connection);
        let source: StreamSource;
        if (params.ref !== undefined) {
          source = { ref: decodeRef(domain, record, params.ref) };
        } else {
          const module = params.module as string;
          refuseInternal(module);
          const { args, kwargs } = decodeArguments(domain, record, params.args, params.kwargs);
          source = { module, fn: params.fn as string, args, kwargs };
        }
        return streams.open(record, context.connection, source, params.credit, context.signal);
      },
    ),

    'stream.credit': method(
      z.object({ streamId: streamIdSchema, credit: z.number().int().min(1).max(LIMITS.credit) }),
      (params, context) => {
        const record = sessions.require(context.connection);
        streams.credit(record, params.streamId, params.credit);
        return { ok: true };
      },
    ),

    'stream.cancel': method(z.object({ streamId: streamIdSchema }), async (params, context) => {
      const record = sessions.require(context.connection);
      await streams.cancel(record, params.streamId);
      return { ok: true };
    }),
  };
}
