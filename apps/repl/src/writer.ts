/**
 * How the REPL prints values: `util.inspect` with proxies shown as what they stand for (node:repl's
 * default writer shows `Proxy [target, handler]`), without the bookkeeping symbols that async context
 * tracking puts on promises and timers made during an evaluation (`async_id_symbol`, `kResourceStore`).
 */
import { inspect } from 'node:util';

const HIDDEN = new Set(['async_id_symbol', 'trigger_async_id_symbol', 'kResourceStore']);

/** A node:repl writer. */
export function createWriter(colors: boolean): (value: unknown) => string {
  return (value) => {
    const options = { colors, showProxy: false };
    if ((typeof value !== 'object' && typeof value !== 'function') || value === null) {
      return inspect(value, options);
    }
    // Hidden for the (synchronous) inspection only, then put back as they were.
    const saved: [symbol, PropertyDescriptor][] = [];
    try {
      for (const key of Object.getOwnPropertySymbols(value)) {
        if (!HIDDEN.has(key.description ?? '')) continue;
        const descriptor = Object.getOwnPropertyDescriptor(value, key);
        if (descriptor?.configurable !== true) continue;
        saved.push([key, descriptor]);
        delete (value as Record<symbol, unknown>)[key];
      }
      return inspect(value, options);
    } finally {
      for (const [key, descriptor] of saved) Object.defineProperty(value, key, descriptor);
    }
  };
}
