/**
 * SQL of queue statistics: exact current counts from pg-boss's table (served by its index on
 * (name, state, blocked, start_after) over live jobs), and terminal counts over a window.
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";

/** Current counts of one pg-boss queue. */
export interface LiveCountsRow {
  name: string;
  /** Ready to run now (waiting, or a retry that is due). */
  queued: number;
  /** Waiting for a future start (first attempt). */
  delayed: number;
  active: number;
  /** Waiting for a retry that is not due yet. */
  retrying: number;
  /** When the oldest ready job became ready. */
  oldest_ready: Date | null;
}

/** Terminal counts of one pg-boss queue over a window. */
export interface TerminalCountsRow {
  queue_name: string;
  completed: number;
  failed: number;
  cancelled: number;
}

/** The stats queries of one installation. */
export function statsQueries(schema: string, bossSchema: string) {
  const job = qualified(bossSchema, "job");
  const events = qualified(schema, "job_event");
  return {
    /** Exact current counts of the given pg-boss queues, and the database time they were taken at. */
    async live(db: Queryable, names: string[]): Promise<{ rows: LiveCountsRow[]; capturedAt: Date }> {
      const { rows } = await db.query<LiveCountsRow & { captured_at: Date }>(
        `SELECT name,
           count(*) FILTER (WHERE state IN ('created', 'retry') AND start_after <= now())::int AS queued,
           count(*) FILTER (WHERE state = 'created' AND start_after > now())::int AS delayed,
           count(*) FILTER (WHERE state = 'active')::int AS active,
           count(*) FILTER (WHERE state = 'retry' AND start_after > now())::int AS retrying,
           min(start_after) FILTER (WHERE state IN ('created', 'retry') AND start_after <= now()) AS oldest_ready,
           now() AS captured_at
         FROM ${job}
         WHERE name = ANY($1::text[]) AND state IN ('created', 'retry', 'active')
         GROUP BY name`,
        [names],
      );
      const { rows: [now] } = rows.length > 0 ? { rows: [{ captured_at: rows[0]!.captured_at }] } : await db.query<{ captured_at: Date }>("SELECT now() AS captured_at");
      return { rows, capturedAt: now!.captured_at };
    },

    /** Completed, failed and cancelled jobs per pg-boss queue over the last `windowSeconds`, from the event log. */
    async terminal(db: Queryable, windowSeconds: number): Promise<TerminalCountsRow[]> {
      const { rows } = await db.query<TerminalCountsRow>(
        `SELECT queue_name,
           count(*) FILTER (WHERE type = 'completed')::int AS completed,
           count(*) FILTER (WHERE type = 'failed')::int AS failed,
           count(*) FILTER (WHERE type = 'cancelled')::int AS cancelled
         FROM ${events}
         WHERE occurred_at >= now() - $1 * interval '1 second' AND type IN ('completed', 'failed', 'cancelled')
         GROUP BY queue_name`,
        [windowSeconds],
      );
      return rows;
    },
  };
}

export type StatsQueries = ReturnType<typeof statsQueries>;
