/**
 * Enqueue quotas: how many jobs of a type one principal may add per minute, cluster-wide (e.g.
 * `email:send`, so a leaked service token cannot turn the service into a spam relay). Counted from
 * the principal's own recent jobs through the (principal, created_on) index, under an advisory lock
 * per principal and type, inside the enqueue transaction: exact across replicas, no extra table.
 */
import type { Queryable } from "../db/pool.js";
import { qualified } from "../db/sql.js";
import { ResourceExhaustedError } from "./errors.js";
import type { RegisteredJobType } from "./registry.js";

/** A quota: at most `perMinute` jobs of `type` per principal per minute. */
export interface EnqueueQuota {
  type: string;
  perMinute: number;
}

/** Checks quotas inside an enqueue transaction. */
export function quotaChecker(bossSchema: string, quotas: readonly EnqueueQuota[]) {
  const job = qualified(bossSchema, "job");
  const byType = new Map(quotas.filter((q) => q.perMinute > 0).map((q) => [q.type, q]));
  return {
    applies: (type: RegisteredJobType) => byType.has(type.type),
    /**
     * Of `wanted` new jobs of `type` by `principal`, how many fit; when not all do, the error to give
     * the rest (RESOURCE_EXHAUSTED with when to retry).
     */
    async check(db: Queryable, type: RegisteredJobType, principal: string, wanted: number): Promise<{ fits: number; error?: ResourceExhaustedError }> {
      const quota = byType.get(type.type);
      if (!quota) return { fits: wanted };
      await db.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`queue-service:quota:${type.type}:${principal}`]);
      const { rows } = await db.query<{ used: number; oldest: Date | null; now: Date }>(
        `SELECT count(*)::int AS used, min(created_on) AS oldest, now() AS now FROM (
           SELECT created_on FROM ${job}
           WHERE name = $1 AND data ->> 'principal' = $2 AND created_on > now() - interval '60 seconds'
           ORDER BY created_on DESC
           LIMIT $3
         ) recent`,
        [type.bossQueue, principal, quota.perMinute],
      );
      const { used, oldest, now } = rows[0]!;
      const fits = Math.max(0, Math.min(wanted, quota.perMinute - used));
      if (fits === wanted) return { fits };
      const retryAfterMs = oldest ? Math.max(1000, 60_000 - (now.getTime() - oldest.getTime())) : 60_000;
      return {
        fits,
        error: new ResourceExhaustedError(`${principal} may add at most ${quota.perMinute} ${type.type} jobs per minute; retry in ${Math.ceil(retryAfterMs / 1000)} s`, retryAfterMs),
      };
    },
  };
}

export type QuotaChecker = ReturnType<typeof quotaChecker>;
