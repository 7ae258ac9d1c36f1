/**
 * How a job type's runnable jobs are claimed, for the in-process workers and WorkerService alike:
 * pg-boss's fetch, or, in a queue with a key limit (QueuePolicy.keyConcurrency), the store's keyed
 * claim, which keeps each concurrency key within the limit across the queue's job types.
 */
import type { Pool } from "../db/pool.js";
import type { JobRegistry, RegisteredJobType } from "./registry.js";
import type { ClaimedJob, WorkQueries } from "./store/work-queries.js";

/** Claims up to `max` jobs of a type. */
export type Claim = (type: RegisteredJobType, max: number) => Promise<ClaimedJob[]>;

export function createClaim(deps: { pool: Pool; registry: JobRegistry; work: WorkQueries }): Claim {
  const { pool, registry, work } = deps;
  return (type, max) => {
    // The queue's policy as it is now (the registry follows UpdateQueue on every replica).
    const queue = registry.queue(type.queue);
    const limit = queue?.policy.keyConcurrency ?? 0;
    if (limit <= 0) return work.claim(type.bossQueue, max);
    const siblings = registry.typesOf(type.queue).map((t) => t.bossQueue);
    return work.claimKeyed(pool, type.queue, type.bossQueue, max, limit, siblings);
  };
}
