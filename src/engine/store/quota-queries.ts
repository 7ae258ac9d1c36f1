/**
 * SQL of enqueue quotas: what a principal added of a job type in the last 60 seconds, through the
 * (principal, created_on) index, under an advisory lock per principal and type (held until the
 * enqueue transaction ends, so that concurrent adds count each other).
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";

/** The quota queries of one installation. */
export function quotaQueries(bossSchema: string) {
  const job = qualified(bossSchema, "job");
  return {
    /**
     * Locks the (principal, type) quota and returns the principal's newest `limit` jobs of the pg-boss
     * queue from the last 60 seconds, oldest first, each with its units (the number of values at
     * `payload.<countPath>`, an array counting each element; 1 without a path), and the database time.
     */
    async recent(
      db: Queryable,
      bossQueue: string,
      principal: string,
      limit: number,
      countPath?: string,
    ): Promise<{ at: number; units: number }[] & { now?: number }> {
      await db.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`queue-service:quota:${bossQueue}:${principal}`]);
      const { rows } = await db.query<{ created_on: Date; units: number; now: Date }>(
        `SELECT created_on, now() AS now,
           CASE jsonb_typeof(data #> $4::text[]) WHEN 'array' THEN jsonb_array_length(data #> $4::text[]) ELSE 1 END AS units
         FROM ${job}
         WHERE name = $1 AND data ->> 'principal' = $2 AND created_on > now() - interval '60 seconds'
         ORDER BY created_on DESC
         LIMIT $3`,
        [bossQueue, principal, limit, ["payload", countPath ?? ""]],
      );
      const recent: { at: number; units: number }[] & { now?: number } = rows
        .map((r) => ({ at: r.created_on.getTime(), units: countPath ? Number(r.units) : 1 }))
        .reverse();
      recent.now = rows[0]?.now.getTime();
      return recent;
    },
  };
}

export type QuotaQueries = ReturnType<typeof quotaQueries>;
