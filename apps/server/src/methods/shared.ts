/** What the method groups share: the domain they act on, the param schemas' building blocks. */
import type { Budget } from '@trestle/budget';
import { z } from 'zod';
import type { Logger, MethodSpec, RpcContext, ServerConfig } from '../contracts';
import type { Resources } from '../resources';
import type { SessionService } from '../sessions';
import type { Streams } from '../streams';
import type { Tenants } from '../tenants';

/** The domain the methods act on. */
export interface Domain {
  readonly config: ServerConfig;
  readonly logger: Logger;
  readonly clock: { now(): number };
  readonly budget: Budget;
  readonly sessions: SessionService;
  readonly tenants: Tenants;
  readonly resources: Resources;
  readonly streams: Streams;
}

/** A method spec, typed by its schema (the table holds them as `MethodSpec<never>`). */
export function method<S extends z.ZodType>(
  params: S,
  handler: (params: z.output<S>, context: RpcContext) => Promise<unknown> | unknown,
): MethodSpec<never> {
  return { params, handler } as unknown as MethodSpec<never>;
}

/** Limits of the params. */
export const LIMITS = Object.freeze({
  name: 256,
  args: 10_000,
  kwargs: 1_000,
  refs: 10_000,
  credit: 100_000,
});

/** A module, function, method or attribute name. */
export const nameSchema = z.string().min(1).max(LIMITS.name);
/** Positional arguments (tagged JSON values). */
export const argsSchema = z.array(z.unknown()).max(LIMITS.args);
/** Keyword arguments (tagged JSON values). */
export const kwargsSchema = z
  .record(z.string().min(1).max(LIMITS.name), z.unknown())
  .refine((value) => Object.keys(value).length <= LIMITS.kwargs, {
    message: `at most ${LIMITS.kwargs} keyword arguments`,
  });
/** A ref in its wire form (validated fully by ref-registry's `decodeRef`, which names the field). */
export const refSchema = z.looseObject({ __type__: z.literal('ref') });
/** A per-call deadline, at most the server's `callTimeoutMs`. */
export const timeoutSchema = (config: ServerConfig) =>
  z.number().int().positive().max(config.python.callTimeoutMs);
/** No params: `{}` (or absent). */
export const emptySchema = z.looseObject({}).optional();
