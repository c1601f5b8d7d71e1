import { randomFillSync } from 'node:crypto';

/** Makes ids: 12 random bytes as 24 hex characters, with a prefix (`s_` sessions, `r_` refs). */
export type IdGenerator = (prefix: string) => string;

// One crypto call fills ids for 341 sessions: per-id `randomBytes` costs microseconds.
const POOL_BYTES = 4092;
const pool = Buffer.allocUnsafe(POOL_BYTES);
let offset = POOL_BYTES;

export const randomId: IdGenerator = (prefix) => {
  if (offset + 12 > POOL_BYTES) {
    randomFillSync(pool);
    offset = 0;
  }
  const id = pool.toString('hex', offset, offset + 12);
  offset += 12;
  return `${prefix}${id}`;
};
