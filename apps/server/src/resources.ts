/**
 * Python objects that hold OS resources (files, sockets, ...). After a call returns refs, each ref's
 * type is checked once per tenant and `module.type` ("does the type have a callable `close`?"); such a
 * ref becomes a handle with obligation `py:close` in the session's handle pool. Discharging it calls
 * `close()` in Python. The session's end drains the pool (closing every such object) before it
 * releases the session's refs; `py.release` of such a ref discharges it first.
 */
import type { Discharger, Handle, HandlePool } from '@trestle/handle-pool';
import type { Python } from '@trestle/python-adapter';
import type { Ref, SessionHandle } from '@trestle/ref-registry';
import type { Logger, Metrics } from './contracts';
import { SUPPORT_MODULE, type Tenant } from './tenants';

/** The obligation of a Python object with a `close()`. */
export const PY_CLOSE = 'py:close';

/** What a `py:close` handle holds. */
export interface ClosableResource {
  readonly python: Python;
  readonly session: SessionHandle;
  readonly ref: Ref;
}

/** The parts of a server session that resources touch. */
export interface ResourceOwner {
  readonly tenant: Tenant;
  readonly python: Python;
  /** The session's ref session in the tenant's Python. */
  readonly refs: SessionHandle;
  readonly handles: HandlePool;
  /** ref id → handle id, for the session's `py:close` handles. */
  readonly closables: Map<string, string>;
}

/** The discharger of `py:close`: `close()` in Python, in the ref's session. */
export const pyCloseDischarger: Discharger<ClosableResource> = async (handle, context) => {
  const { python, session, ref } = handle.resource;
  await python.method(ref, 'close', [], undefined, {
    session,
    signal: context.signal,
    ...(Number.isFinite(context.timeoutMs) ? { timeoutMs: context.timeoutMs } : {}),
  });
};

/** The label of a handle (`io.TextIOWrapper r_…`). */
export const handleLabel = (ref: Ref): string => `${ref.module}.${ref.typeName} ${ref.id}`;

/** Options of {@link Resources}. */
export interface ResourcesOptions {
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Deadline of one type check. */
  readonly checkTimeoutMs: number;
}

/** Tracks closable refs as handles. */
export class Resources {
  readonly #options: ResourcesOptions;

  constructor(options: ResourcesOptions) {
    this.#options = options;
  }

  /**
   * Whether the type of `ref` has a callable `close`: one Python check per tenant and `module.type`
   * (cached; a failed check is not cached and counts as "no").
   */
  isClosable(owner: ResourceOwner, ref: Ref, signal?: AbortSignal): Promise<boolean> {
    const key = `${ref.module}.${ref.typeName}`;
    const cache = owner.tenant.closableTypes;
    let check = cache.get(key);
    if (check === undefined) {
      check = owner.python
        .call<boolean>(SUPPORT_MODULE, 'closable', [ref], undefined, {
          session: owner.refs,
          timeoutMs: this.#options.checkTimeoutMs,
          ...(signal ? { signal } : {}),
        })
        .then(
          (closable) => closable === true,
          (error: unknown) => {
            if (cache.get(key) === check) cache.delete(key);
            this.#options.logger.debug(
              {
                tenant: owner.tenant.name,
                type: key,
                err: error instanceof Error ? error.message : String(error),
              },
              'closable check failed',
            );
            return false;
          },
        );
      cache.set(key, check);
    }
    return check;
  }

  /** Tracks each closable ref among `refs` (not yet tracked) as a `py:close` handle. */
  async adopt(owner: ResourceOwner, refs: readonly Ref[], signal?: AbortSignal): Promise<void> {
    for (const ref of refs) {
      if (owner.closables.has(ref.id)) continue;
      if (!(await this.isClosable(owner, ref, signal))) continue;
      if (owner.closables.has(ref.id) || owner.refs.released) continue;
      const handle = owner.handles.track<ClosableResource>({
        binding: handleLabel(ref),
        obligation: PY_CLOSE,
        resource: { python: owner.python, session: owner.refs, ref },
        meta: { refId: ref.id, typeName: ref.typeName, module: ref.module },
      });
      owner.closables.set(ref.id, handle.id);
    }
  }

  /**
   * Discharges the handle of `ref` (closes the object in Python) and forgets it. Resolves with the
   * outcome's status, or `undefined` when `ref` had no handle.
   */
  async discharge(owner: ResourceOwner, ref: Ref): Promise<string | undefined> {
    const handleId = owner.closables.get(ref.id);
    if (handleId === undefined) return undefined;
    owner.closables.delete(ref.id);
    const outcome = await owner.handles.discharge(handleId);
    const label = outcome.status === 'failed' ? failureOf(outcome.error) : outcome.status;
    this.#options.metrics.handlesDischarged.inc({ outcome: label });
    return outcome.status;
  }
}

/** `failed`, `timeout` or `aborted`, from a handle-pool error code. */
export function failureOf(error: { readonly code?: string } | undefined): string {
  switch (error?.code) {
    case 'HANDLE_DISCHARGE_TIMEOUT':
      return 'timeout';
    case 'HANDLE_DISCHARGE_ABORTED':
      return 'aborted';
    default:
      return 'failed';
  }
}

/** The handles of `pool` as `handles.list` shows them. */
export function describeHandles(
  pool: HandlePool,
  now: number,
): { id: string; obligation: string; label: string; ageMs: number }[] {
  return pool.list().map((handle: Handle) => ({
    id: handle.id,
    obligation: handle.obligation,
    label: handle.binding,
    ageMs: Math.max(0, Math.round(now - handle.createdAt)),
  }));
}
