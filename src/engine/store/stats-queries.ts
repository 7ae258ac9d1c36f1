/**
 * SQL of queue statistics, from the counts the triggers keep (migration 0013): the folded counts plus
 * the deltas not folded yet, read in one snapshot with the jobs scheduled for the rest of the current
 * minute (the only ones whose due-or-not the counts cannot tell). A read costs O(queues x buckets),
 * whatever the number of jobs and events (plus the jobs due in the next minute at most).
 */
import type { Queryable } from "../../db/pool.js";
import { prepared, qualified } from "../../db/sql.js";

/** Counts of one pg-boss queue. */
export interface CountsRow {
  name: string;
  /** Ready to run now (waiting, or a retry that is due). */
  queued: number;
  /** Waiting for a future start (first attempt). */
  delayed: number;
  active: number;
  /** Waiting for a retry that is not due yet. */
  retrying: number;
  /** Waiting for their parents (kind `waiting`: created and blocked). */
  waiting: number;
  /** When the oldest ready job became ready. */
  oldest_ready: Date | null;
  /** Transitions over the window (to the minute within the last two hours, to the hour before). */
  completed: number;
  failed: number;
  cancelled: number;
}

/** The stats queries of one installation. */
export function statsQueries(schema: string, bossSchema: string) {
  const job = qualified(bossSchema, "job");
  const counts = qualified(schema, "job_count");
  const deltas = qualified(schema, "job_count_delta");
  // Planned once per connection: planning it (two lookups per queue over every partition) cost ten
  // times its execution when planned per call.
  const countsStatement = prepared(
    `WITH t AS (
           SELECT now() AS t0, date_trunc('minute', now()) AS m, now() - $2 * interval '1 second' AS since
         ), c AS (
           SELECT queue_name, kind, bucket, n FROM ${counts} WHERE queue_name = ANY($1::text[])
           UNION ALL
           SELECT queue_name, kind, bucket, n FROM ${deltas} WHERE queue_name = ANY($1::text[])
         ), folded AS (
           SELECT c.queue_name AS name,
             sum(n) FILTER (WHERE kind IN ('created', 'retry') AND bucket < t.m) AS due,
             sum(n) FILTER (WHERE kind IN ('created', 'retry') AND bucket = t.m) AS this_minute,
             sum(n) FILTER (WHERE kind = 'created' AND bucket > t.m) AS delayed,
             sum(n) FILTER (WHERE kind = 'retry' AND bucket > t.m) AS retrying,
             sum(n) FILTER (WHERE kind = 'active') AS active,
             sum(n) FILTER (WHERE kind = 'waiting') AS waiting,
             sum(n) FILTER (WHERE kind = 'completed' AND bucket >= date_trunc('minute', t.since) OR kind = 'completed:hour' AND bucket >= date_trunc('hour', t.since)) AS completed,
             sum(n) FILTER (WHERE kind = 'failed' AND bucket >= date_trunc('minute', t.since) OR kind = 'failed:hour' AND bucket >= date_trunc('hour', t.since)) AS failed,
             sum(n) FILTER (WHERE kind = 'cancelled' AND bucket >= date_trunc('minute', t.since) OR kind = 'cancelled:hour' AND bucket >= date_trunc('hour', t.since)) AS cancelled
           FROM c, t GROUP BY c.queue_name
         ), not_due AS (
           -- The current minute's bucket holds jobs due earlier in the minute and later: only the later
           -- ones are looked at (job_i14 from now to the minute's end; jobs due when added are never here).
           SELECT j.name,
             count(*) FILTER (WHERE j.state = 'created') AS delayed,
             count(*) FILTER (WHERE j.state = 'retry') AS retrying
           FROM ${job} j, t
           WHERE j.name = ANY($1::text[]) AND j.state IN ('created', 'retry') AND NOT j.blocked
             AND j.start_after > t.t0 AND j.start_after < t.m + interval '1 minute' AND j.start_after > j.created_on
           GROUP BY j.name
         )
         SELECT q.name,
           (COALESCE(f.due, 0) + COALESCE(f.this_minute, 0) - COALESCE(m.delayed, 0) - COALESCE(m.retrying, 0))::int AS queued,
           (COALESCE(f.delayed, 0) + COALESCE(m.delayed, 0))::int AS delayed,
           COALESCE(f.active, 0)::int AS active,
           COALESCE(f.waiting, 0)::int AS waiting,
           (COALESCE(f.retrying, 0) + COALESCE(m.retrying, 0))::int AS retrying,
           COALESCE(f.completed, 0)::int AS completed,
           COALESCE(f.failed, 0)::int AS failed,
           COALESCE(f.cancelled, 0)::int AS cancelled,
           LEAST(
             (SELECT min(j.start_after) FROM ${job} j WHERE j.name = q.name AND j.state = 'created' AND NOT j.blocked AND j.start_after <= t.t0),
             (SELECT min(j.start_after) FROM ${job} j WHERE j.name = q.name AND j.state = 'retry' AND NOT j.blocked AND j.start_after <= t.t0)
           ) AS oldest_ready,
           t.t0 AS captured_at
         FROM unnest($1::text[]) AS q(name)
         CROSS JOIN t
         LEFT JOIN folded f ON f.name = q.name
         LEFT JOIN not_due m ON m.name = q.name`,
  );
  return {
    /**
     * Counts of the given pg-boss queues, the finished ones over the last `windowSeconds`, and the
     * database time they were taken at.
     */
    async counts(db: Queryable, names: readonly string[], windowSeconds: number): Promise<{ rows: CountsRow[]; capturedAt: Date }> {
      const { rows } = await db.query<CountsRow & { captured_at: Date }>(countsStatement([names, windowSeconds]));
      const capturedAt = rows[0]?.captured_at ?? new Date();
      return { rows, capturedAt };
    },

    /**
     * Moves the job counts' and the activity counters' deltas into their tables (one replica at a time:
     * one statement, so both run under the advisory lock the first takes); returns how many job count
     * rows were folded.
     */
    async fold(db: Queryable): Promise<number> {
      const { rows } = await db.query<{ folded: number }>(
        `SELECT ${qualified(schema, "fold_job_counts")}() AS folded, ${qualified(schema, "fold_job_activity")}()`,
      );
      return rows[0]!.folded;
    },
  };
}

export type StatsQueries = ReturnType<typeof statsQueries>;
