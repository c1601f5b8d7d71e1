/** `session.open`, `session.resume`, `session.end`, `session.info`. */
import { z } from 'zod';
import type { MethodTable } from '../contracts';
import { type Domain, emptySchema, method } from './shared';

export function sessionMethods(domain: Domain): MethodTable {
  const { sessions, clock } = domain;
  return {
    'session.open': method(emptySchema, (_params, context) => sessions.open(context.connection)),

    'session.resume': method(
      z.object({
        sessionId: z.string().min(1).max(128),
        resumeToken: z.string().min(1).max(128),
      }),
      (params, context) => sessions.resume(context.connection, params.sessionId, params.resumeToken),
    ),

    'session.end': method(emptySchema, (_params, context) => {
      const record = sessions.require(context.connection);
      return sessions.end(record, 'logout');
    }),

    'session.info': method(emptySchema, (_params, context) => {
      const record = sessions.require(context.connection);
      const { bridge } = record;
      return {
        sessionId: record.id,
        tenant: record.tenant.name,
        tier: bridge.tier,
        createdAt: record.createdAt,
        ageMs: Math.max(0, Math.round(clock.now() - bridge.createdAt)),
        refs: record.refs.released ? 0 : record.refs.listRefs().length,
        handles: bridge.handles.size,
        calls: { ...bridge.calls },
      };
    }),
  };
}
