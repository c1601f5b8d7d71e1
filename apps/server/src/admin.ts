/**
 * The admin socket: the kernel protocol (`@trestle/kernel-client`) on a Unix socket
 * (`TRESTLE_ADMIN_SOCKET`), for operators and local daemons.
 *
 * - `PING` → `{ pong: true, replica }`
 * - `STATUS` → `{ replica, sessions, tenants, calls, uptimeMs, draining, python }` (`python`: per
 *   running tenant, `{ tenant, sessions, refSessions, refs, workers: [{ pid, sessions, refs }] }`)
 * - `APPLY_POLICY { policy: { tenant, tier?, allowModules? } }` → changes the tier of the tenant's live
 *   sessions and of its future ones, and/or its module allowlist (see tenants.ts for when a new list
 *   reaches the workers). Bad input is `BAD_POLICY` naming the field.
 */
import { createKernelServer, KernelMethodError, type KernelServer } from '@trestle/kernel-client/server';
import { z } from 'zod';
import type { Logger } from './contracts';
import type { SessionService } from './sessions';
import type { Tenants } from './tenants';

/** What the admin methods read and change. */
export interface AdminContext {
  readonly replica: string;
  readonly sessions: SessionService;
  readonly tenants: Tenants;
  /** Tier names the budget knows. */
  readonly tiers: () => readonly string[];
  /** Calls handled so far, and whether the server is draining. */
  readonly status: () => { readonly calls: number; readonly draining: boolean; readonly uptimeMs: number };
  readonly logger: Logger;
}

const MODULE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

const policySchema = z.object({
  policy: z
    .object({
      tenant: z.string().min(1).max(256),
      tier: z.string().min(1).max(64).optional(),
      allowModules: z
        .array(z.string().max(256).regex(MODULE, 'must be a dotted Python module name'))
        .max(1_000)
        .nullable()
        .optional(),
    })
    .strict(),
});

/**
 * Per tenant whose Python runs: its server sessions, the ref sessions and refs its Node registry
 * tracks, and what each worker process holds (`pythonStats`: pid, sessions, refs), for leak checks.
 */
async function pythonStatus(tenants: Tenants) {
  const running = tenants.all().filter((tenant) => tenant.python !== undefined);
  return Promise.all(
    running.map(async (tenant) => {
      const python = tenant.python as NonNullable<typeof tenant.python>;
      const local = python.stats();
      const workers = await python.pythonStats().then(
        (list) => list.map(({ pid, sessions, refs }) => ({ pid, sessions, refs })),
        (error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }),
      );
      return {
        tenant: tenant.name,
        sessions: tenant.sessions.size,
        refSessions: local.sessions,
        refs: local.refs,
        workers,
      };
    }),
  );
}

/** The admin methods (exported for tests without a socket). */
export function adminMethods(context: AdminContext) {
  return {
    PING: () => ({ pong: true, replica: context.replica }),
    STATUS: async () => {
      const status = context.status();
      return {
        replica: context.replica,
        sessions: context.sessions.size,
        tenants: context.tenants.running,
        calls: status.calls,
        uptimeMs: Math.round(status.uptimeMs),
        draining: status.draining,
        python: await pythonStatus(context.tenants),
      };
    },
    APPLY_POLICY: async (params: unknown) => {
      const parsed = policySchema.safeParse(params);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const field = issue && issue.path.length > 0 ? issue.path.join('.') : 'policy';
        throw new KernelMethodError('BAD_POLICY', `${field}: ${issue?.message ?? 'invalid'}`);
      }
      const { tenant, tier, allowModules } = parsed.data.policy;
      if (tier === undefined && allowModules === undefined) {
        throw new KernelMethodError('BAD_POLICY', 'policy: give tier and/or allowModules');
      }
      if (tier !== undefined && !context.tiers().includes(tier)) {
        throw new KernelMethodError(
          'BAD_POLICY',
          `policy.tier: unknown tier ${JSON.stringify(tier)} (known: ${context.tiers().join(', ')})`,
        );
      }
      const applied = await context.tenants.applyPolicy(tenant, {
        ...(tier !== undefined ? { tier } : {}),
        ...(allowModules !== undefined ? { allowModules } : {}),
      });
      let sessionsUpdated = 0;
      if (tier !== undefined) {
        for (const record of context.sessions.all()) {
          if (record.tenant.name !== tenant || record.endReason !== undefined) continue;
          try {
            await record.bridge.setTier(tier);
            sessionsUpdated++;
          } catch (error) {
            context.logger.warn(
              { sessionId: record.id, tier, err: error instanceof Error ? error.message : String(error) },
              'admin: could not change the tier of a session',
            );
          }
        }
      }
      context.logger.info(
        { tenant, tier, allowModules, sessionsUpdated, ...applied },
        'admin: policy applied',
      );
      return {
        applied: true,
        tenant,
        ...(tier !== undefined ? { tier } : {}),
        ...(allowModules !== undefined ? { allowModules } : {}),
        sessionsUpdated,
        restarted: applied.restarted,
        pending: applied.pending,
      };
    },
  };
}

/** Starts the admin server on `socketPath`. */
export async function startAdmin(socketPath: string, context: AdminContext): Promise<KernelServer> {
  const server = createKernelServer({
    methods: adminMethods(context),
    onError: (error, info) =>
      context.logger.error(
        { err: error instanceof Error ? error.message : String(error), ...info },
        'admin: handler failed',
      ),
  });
  await server.listen({ path: socketPath });
  context.logger.info({ socket: socketPath }, 'admin socket listening');
  return server;
}
