/**
 * Enqueue quotas: how much of a job type one principal may add per minute, cluster-wide. A job
 * counts once, or, with `countPath`, once per value at that payload field (an array counts each of
 * its elements): `email:send` is limited in recipients, so a leaked service token cannot turn the
 * service into a spam relay by packing 50 addresses into each job. Counted from the principal's own
 * jobs of the last 60 seconds (store/quota-queries.ts), inside the enqueue transaction: exact across
 * replicas, no extra table.
 */
import type { Queryable } from "../db/pool.js";
import { ResourceExhaustedError, ValidationError } from "./errors.js";
import type { RegisteredJobType } from "./registry.js";
import type { QuotaQueries } from "./store/quota-queries.js";

/** A quota: at most `perMinute` units of `type` per principal in any 60 seconds. */
export interface EnqueueQuota {
  type: string;
  perMinute: number;
  /** The payload field whose values are counted (each job counts 1 without it). */
  countPath?: string;
  /** What a unit is, for messages (default `jobs`). */
  unit?: string;
}

const WINDOW_MS = 60_000;

/** The units one payload counts for. */
function unitsOf(quota: EnqueueQuota, payload: Record<string, unknown>): number {
  if (!quota.countPath) return 1;
  const value = payload[quota.countPath];
  return Array.isArray(value) ? value.length : 1;
}

/** Checks quotas inside an enqueue transaction. */
export function quotaChecker(queries: QuotaQueries, quotas: readonly EnqueueQuota[]) {
  const byType = new Map(quotas.filter((q) => q.perMinute > 0).map((q) => [q.type, q]));
  return {
    applies: (type: RegisteredJobType) => byType.has(type.type),
    /**
     * Which of the new jobs of `type` by `principal` (their payloads, in order) fit: for each, no
     * error, or the error to give it: RESOURCE_EXHAUSTED with when to retry (every job after the first
     * that does not fit gets it too, so that jobs are accepted in order), or INVALID_ARGUMENT for a job
     * that alone counts for more than the quota.
     */
    async check(db: Queryable, type: RegisteredJobType, principal: string, payloads: Record<string, unknown>[]): Promise<(Error | undefined)[]> {
      const quota = byType.get(type.type);
      if (!quota) return payloads.map(() => undefined);
      const unit = quota.unit ?? "jobs";
      // Every job counts at least 1, so the newest `perMinute` jobs hold all that can count.
      const recent = await queries.recent(db, type.bossQueue, principal, quota.perMinute, quota.countPath);
      const now = recent.now ?? Date.now();
      let used = recent.reduce((n, r) => n + r.units, 0);
      let refusal: ResourceExhaustedError | undefined;
      return payloads.map((payload) => {
        const units = unitsOf(quota, payload);
        if (units > quota.perMinute) {
          return new ValidationError([
            {
              field: `payload.${quota.countPath}`,
              description: `counts ${units} ${unit}; ${principal} may add at most ${quota.perMinute} ${unit} of ${type.type} per minute`,
              reason: "QUOTA_EXCEEDED",
            },
          ]);
        }
        if (!refusal && used + units <= quota.perMinute) {
          used += units;
          return undefined;
        }
        if (!refusal) {
          const retryAfterMs = retryAfter(recent, used + units - quota.perMinute, now);
          refusal = new ResourceExhaustedError(
            `${principal} may add at most ${quota.perMinute} ${unit} of ${type.type} per minute; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
            retryAfterMs,
          );
        }
        return refusal;
      });
    },
  };
}

/** How long until `excess` units of the window's jobs (oldest first) have left it. */
function retryAfter(recent: { at: number; units: number }[], excess: number, now: number): number {
  let left = excess;
  for (const r of recent) {
    left -= r.units;
    if (left <= 0) return Math.max(1000, r.at + WINDOW_MS - now);
  }
  return WINDOW_MS;
}

export type QuotaChecker = ReturnType<typeof quotaChecker>;
