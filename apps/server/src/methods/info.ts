/** `budget.get`, `handles.list`, `refs.list`. */
import { encodeRef } from '@trestle/ref-registry';
import type { MethodTable } from '../contracts';
import { describeHandles } from '../resources';
import { type Domain, emptySchema, method } from './shared';

export function infoMethods(domain: Domain): MethodTable {
  const { sessions, budget, clock } = domain;
  return {
    'budget.get': method(emptySchema, async (_params, context) => {
      const record = sessions.require(context.connection);
      const tier = record.bridge.tier;
      const limits = budget.tiers.get(tier)?.limits ?? null;
      const remaining = await record.bridge.budget.peek();
      if (limits === null || remaining === null) {
        return { tier, remaining: null, capacity: null, refillPerSec: null, fullAfterMs: 0 };
      }
      return {
        tier,
        remaining,
        capacity: limits.capacity,
        refillPerSec: limits.refillPerMs * 1000,
        fullAfterMs: Math.max(0, Math.ceil((limits.capacity - remaining) / limits.refillPerMs)),
      };
    }),

    'handles.list': method(emptySchema, (_params, context) => {
      const record = sessions.require(context.connection);
      return { handles: describeHandles(record.handles, clock.now()) };
    }),

    'refs.list': method(emptySchema, (_params, context) => {
      const record = sessions.require(context.connection);
      const now = clock.now();
      const refs = record.refs.released ? [] : record.refs.listRefs();
      const live = new Set<string>();
      const list = refs.map((ref) => {
        live.add(ref.id);
        const seen = record.refTimes.get(ref.id) ?? record.bridge.createdAt;
        return {
          ref: encodeRef(ref),
          typeName: ref.typeName,
          module: ref.module,
          ageMs: Math.max(0, Math.round(now - seen)),
        };
      });
      for (const id of record.refTimes.keys()) if (!live.has(id)) record.refTimes.delete(id);
      return { refs: list };
    }),
  };
}
