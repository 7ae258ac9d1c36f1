/**
 * SQL of the analytics rollups: job activity per minute (and per hour) from the event log.
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";

/** How a minute's activity is computed from the events of [from, to). */
const activity = (events: string) => `
  SELECT date_trunc('minute', occurred_at) AS minute, queue_name,
    count(*) FILTER (WHERE type IN ('created', 'waiting', 'redriven'))::int AS added,
    count(*) FILTER (WHERE type = 'started')::int AS started,
    count(*) FILTER (WHERE type = 'completed')::int AS completed,
    count(*) FILTER (WHERE type = 'failed')::int AS failed,
    count(*) FILTER (WHERE type = 'dead_lettered')::int AS dead_lettered,
    count(*) FILTER (WHERE type = 'cancelled')::int AS cancelled,
    count(*) FILTER (WHERE type = 'retry_scheduled')::int AS retried,
    count(*) FILTER (WHERE type = 'expired')::int AS expired,
    COALESCE(array_agg(extract(epoch FROM occurred_at - ready_at) * 1000 ORDER BY extract(epoch FROM occurred_at - ready_at))
      FILTER (WHERE type = 'started' AND ready_at IS NOT NULL), '{}')::float8[] AS wait_ms,
    COALESCE(array_agg(extract(epoch FROM occurred_at - attempt_started_at) * 1000 ORDER BY extract(epoch FROM occurred_at - attempt_started_at))
      FILTER (WHERE type IN ('completed', 'retry_scheduled', 'failed', 'cancelled') AND attempt_started_at IS NOT NULL), '{}')::float8[] AS run_ms
  FROM ${events}
  WHERE occurred_at >= $1 AND occurred_at < $2 AND queue_name = ANY($3::text[])
  GROUP BY 1, 2`;

/** The rollup queries of one installation. */
export function rollupQueries(schema: string) {
  const events = qualified(schema, "job_event");
  const minutes = qualified(schema, "job_stats_minute");
  const hours = qualified(schema, "job_stats_hour");
  const state = qualified(schema, "analytics_state");
  const counts = "added, started, completed, failed, dead_lettered, cancelled, retried, expired";
  return {
    /**
     * The start of the first minute that may still get events: the current minute, or the minute of
     * the oldest transaction of this database still running (events are stamped with their
     * transaction's start time). A transaction older than `stuckAfterSeconds` is not waited for.
     */
    async finalBefore(db: Queryable, stuckAfterSeconds: number): Promise<Date> {
      const { rows } = await db.query<{ final_before: Date }>(
        `SELECT date_trunc('minute', LEAST(now(), COALESCE((
           SELECT min(xact_start) FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
             AND xact_start > now() - $1 * interval '1 second'), now()))) AS final_before`,
        [stuckAfterSeconds],
      );
      return rows[0]!.final_before;
    },

    /** Serialises rollups: waits for one running elsewhere (until this transaction ends). */
    async lock(db: Queryable): Promise<void> {
      await db.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`queue-service:rollup:${schema}`]);
    },

    /** Recomputes the minutes of [from, to) from the events (each minute rewritten whole). */
    async rollupMinutes(db: Queryable, from: Date, to: Date, queueNames: string[]): Promise<number> {
      await db.query(`DELETE FROM ${minutes} WHERE minute >= $1 AND minute < $2`, [from, to]);
      const { rowCount } = await db.query(
        `INSERT INTO ${minutes} (minute, queue_name, ${counts}, wait_ms, run_ms) SELECT minute, queue_name, ${counts}, wait_ms, run_ms FROM (${activity(events)}) a`,
        [from, to, queueNames],
      );
      return rowCount ?? 0;
    },

    /** Recomputes the hours of [from, to) from their minutes. */
    async rollupHours(db: Queryable, from: Date, to: Date): Promise<number> {
      await db.query(`DELETE FROM ${hours} WHERE hour >= $1 AND hour < $2`, [from, to]);
      const pct = "ARRAY[0.5, 0.9, 0.95, 0.99, 1.0]";
      const { rowCount } = await db.query(
        `WITH m AS (SELECT date_trunc('hour', minute) AS hour, * FROM ${minutes} WHERE minute >= $1 AND minute < $2),
         c AS (SELECT hour, queue_name, sum(added)::int AS added, sum(started)::int AS started, sum(completed)::int AS completed,
                 sum(failed)::int AS failed, sum(dead_lettered)::int AS dead_lettered, sum(cancelled)::int AS cancelled,
                 sum(retried)::int AS retried, sum(expired)::int AS expired
               FROM m GROUP BY 1, 2),
         w AS (SELECT hour, queue_name, count(v)::int AS n, percentile_disc(${pct}) WITHIN GROUP (ORDER BY v) AS p FROM m, unnest(m.wait_ms) v GROUP BY 1, 2),
         r AS (SELECT hour, queue_name, count(v)::int AS n, percentile_disc(${pct}) WITHIN GROUP (ORDER BY v) AS p FROM m, unnest(m.run_ms) v GROUP BY 1, 2)
         INSERT INTO ${hours} (hour, queue_name, ${counts}, wait_count, wait_p50_ms, wait_p90_ms, wait_p95_ms, wait_p99_ms, wait_max_ms,
           run_count, run_p50_ms, run_p90_ms, run_p95_ms, run_p99_ms, run_max_ms)
         SELECT c.hour, c.queue_name, c.added, c.started, c.completed, c.failed, c.dead_lettered, c.cancelled, c.retried, c.expired,
           COALESCE(w.n, 0), w.p[1], w.p[2], w.p[3], w.p[4], w.p[5], COALESCE(r.n, 0), r.p[1], r.p[2], r.p[3], r.p[4], r.p[5]
         FROM c LEFT JOIN w USING (hour, queue_name) LEFT JOIN r USING (hour, queue_name)`,
        [from, to],
      );
      return rowCount ?? 0;
    },

    async rolledThrough(db: Queryable): Promise<Date | undefined> {
      const { rows } = await db.query<{ rolled_through: Date }>(`SELECT rolled_through FROM ${state}`);
      return rows[0]?.rolled_through;
    },

    async setRolledThrough(db: Queryable, at: Date): Promise<void> {
      await db.query(
        `INSERT INTO ${state} (rolled_through) VALUES ($1)
         ON CONFLICT (singleton) DO UPDATE SET rolled_through = GREATEST(${state}.rolled_through, EXCLUDED.rolled_through), updated_at = now()`,
        [at],
      );
    },

    /** Deletes minutes and hours past their retention. */
    async sweep(db: Queryable, minuteRetentionSeconds: number, hourRetentionSeconds: number): Promise<void> {
      await db.query(`DELETE FROM ${minutes} WHERE minute < now() - $1 * interval '1 second'`, [minuteRetentionSeconds]);
      await db.query(`DELETE FROM ${hours} WHERE hour < now() - $1 * interval '1 second'`, [hourRetentionSeconds]);
    },
  };
}

export type RollupQueries = ReturnType<typeof rollupQueries>;
