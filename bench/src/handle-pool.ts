/**
 * Optional benchmark 5: @trestle/handle-pool, only when its build (packages/handle-pool/dist) exists.
 * Loaded dynamically and checked shape by shape, so this file neither type-checks against nor breaks
 * on a package that is still being written. Measures a track -> forget cycle (sync) and a
 * track -> await discharge cycle (no-op discharger) against a Map floor (set + delete).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Contender, type Measurement, measureThroughput, type ThroughputOptions } from './harness';

export type HandlePoolOutcome =
  | { readonly skipped: true; readonly reason: string }
  | { readonly skipped: false; readonly rows: Measurement[] };

interface PoolLike {
  track(input: { binding: string; obligation: string; resource?: unknown }): unknown;
  forget(target: unknown): boolean;
  discharge(target: unknown): Promise<unknown>;
}

const isFunction = (value: unknown): value is (...args: never[]) => unknown => typeof value === 'function';

const distEntry = fileURLToPath(
  new URL('../node_modules/@trestle/handle-pool/dist/index.js', import.meta.url),
);

export async function runHandlePoolBench(options: ThroughputOptions): Promise<HandlePoolOutcome> {
  if (!existsSync(distEntry)) {
    return {
      skipped: true,
      reason:
        'packages/handle-pool/dist/index.js does not exist (build it with `pnpm --filter @trestle/handle-pool build`)',
    };
  }
  try {
    // A variable specifier: no compile-time dependency on the package's types.
    const specifier = '@trestle/handle-pool';
    const mod = (await import(specifier)) as Record<string, unknown>;
    const create = mod.createHandlePool;
    if (!isFunction(create)) return { skipped: true, reason: 'createHandlePool is not exported' };
    const makePool = (): PoolLike => {
      const pool = (create as (options: unknown) => unknown)({
        maxHandles: Number.POSITIVE_INFINITY,
        retainOutcomes: 0,
        dischargers: { 'bench:noop': () => undefined },
      }) as Partial<PoolLike> | null;
      if (!pool || !isFunction(pool.track) || !isFunction(pool.forget) || !isFunction(pool.discharge)) {
        throw new Error('the pool lacks track/forget/discharge');
      }
      return pool as PoolLike;
    };
    const forgetPool = makePool();
    const dischargePool = makePool();
    const input = { binding: 'bench', obligation: 'bench:noop', resource: undefined };
    // Fail early (outside the timed loop) if the API does not behave as expected.
    if (forgetPool.forget(forgetPool.track(input)) !== true)
      throw new Error('forget(track()) did not return true');

    const floor = new Map<string, object>();
    let floorId = 0;
    const contenders: (() => Contender)[] = [
      () => ({
        id: 'handle-pool-track-forget',
        label: 'handle-pool track + forget',
        mode: 'sync',
        run(n) {
          let ok = 0;
          for (let i = 0; i < n; i++) if (forgetPool.forget(forgetPool.track(input))) ok++;
          return ok;
        },
      }),
      () => ({
        id: 'handle-pool-track-discharge',
        label: 'handle-pool track + await discharge',
        mode: 'async',
        async run(n) {
          let ok = 0;
          for (let i = 0; i < n; i++) {
            const outcome = (await dischargePool.discharge(dischargePool.track(input))) as {
              status?: unknown;
            } | null;
            if (outcome?.status === 'discharged') ok++;
          }
          return ok;
        },
      }),
      () => ({
        id: 'floor-map-set-delete',
        label: 'floor Map set + delete (sync)',
        mode: 'sync',
        run(n) {
          let ok = 0;
          for (let i = 0; i < n; i++) {
            const id = `h_${++floorId}`;
            floor.set(id, input);
            if (floor.delete(id)) ok++;
          }
          return ok;
        },
      }),
    ];
    return { skipped: false, rows: await measureThroughput(contenders, options) };
  } catch (error) {
    return {
      skipped: true,
      reason: `handle-pool benchmark failed: ${error instanceof Error ? error.message : String(error)}`,
    };
  }
}
