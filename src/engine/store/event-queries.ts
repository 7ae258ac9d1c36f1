/**
 * SQL of the job event log. Reads are commit-safe: only events of transactions older than the
 * oldest one still running are served, so a transaction that commits late (with an older xid than
 * events already served) can never be skipped.
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";
import { JOB_COLUMNS, type JobRow } from "./job-record.js";

/** A position in the event log. */
export interface EventPosition {
  /** The transaction id (xid8), as a decimal string. */
  xid: string;
  seq: number;
}

/** One event row. */
export interface EventRow {
  xid: string;
  seq: number;
  occurred_at: Date;
  job_id: string;
  queue_name: string;
  type: string;
  state: string;
  previous_state: string | null;
  retry_count: number;
  detail: Record<string, unknown> | null;
}

/** The event queries of one installation (`bossSchema`: to filter events by their job's principal). */
export function eventQueries(schema: string, bossSchema: string) {
  const table = qualified(schema, "job_event");
  const jobs = qualified(bossSchema, "job");
  const watermark = qualified(schema, "event_watermark");
  const columns = "xid::text AS xid, seq, occurred_at, job_id, queue_name, type::text AS type, state, previous_state, retry_count, detail";
  return {
    /**
     * Events after `after`, in log order, that are safe to serve: up to about `limit`, always whole
     * transactions (a transaction's events are never split across reads, so a reader sees a failure
     * and its dead letter together). Also says whether more events exist beyond the safe horizon
     * (transactions still running), so the caller reads again soon even without a wake-up. With
     * `principal`, only events of that principal's jobs (jobs still kept) are read.
     */
    async read(
      db: Queryable,
      after: EventPosition,
      limit: number,
      queueNames?: string[],
      principal?: string,
    ): Promise<{ events: EventRow[]; pending: boolean; full: boolean }> {
      const ofPrincipal = `($5::text IS NULL OR EXISTS (SELECT 1 FROM ${jobs} j WHERE j.name = e.queue_name AND j.id = e.job_id AND j.data ->> 'principal' = $5))`;
      const { rows } = await db.query<EventRow>(
        `WITH h AS (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS horizon)
         SELECT ${columns}
         FROM ${table} e, h
         WHERE (xid, seq) > ($1::xid8, $2::bigint) AND xid < h.horizon
           AND ($4::text[] IS NULL OR queue_name = ANY($4::text[]))
           AND ${ofPrincipal}
         ORDER BY xid, seq
         LIMIT $3`,
        [after.xid, after.seq, limit + 1, queueNames ?? null, principal ?? null],
      );
      let events = rows;
      const full = rows.length > limit;
      if (full) {
        const lastXid = rows[rows.length - 1]!.xid;
        const whole = rows.filter((r) => r.xid !== lastXid);
        if (whole.length > 0) events = whole;
        else {
          // One transaction larger than the limit: read it whole.
          events = (
            await db.query<EventRow>(
              `SELECT ${columns} FROM ${table} e WHERE xid = $1::xid8 AND (xid, seq) > ($2::xid8, $3::bigint) AND ($4::text[] IS NULL OR queue_name = ANY($4::text[])) AND ${ofPrincipal} ORDER BY seq`,
              [lastXid, after.xid, after.seq, queueNames ?? null, principal ?? null],
            )
          ).rows;
        }
        return { events, pending: true, full: true };
      }
      const last = events[events.length - 1];
      const { rows: beyond } = await db.query<{ pending: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${table} WHERE (xid, seq) > ($1::xid8, $2::bigint)) AS pending`,
        [last?.xid ?? after.xid, last?.seq ?? after.seq],
      );
      return { events, pending: beyond[0]!.pending, full: false };
    },

    /**
     * The committed events of `jobIds` from transactions at or after `fromXid`, in `seq` order, each
     * with its job as it is in the same snapshot, and that snapshot. No horizon wait: a job's events
     * are written under its row lock, so its committed events are already in commit order by `seq`,
     * and every event a reader has not seen yet (not visible in its previous snapshot) has an xid at
     * or above that snapshot's xmin. The scan is the log's tail from `fromXid` (the primary key's range).
     */
    async readJobs(db: Queryable, jobIds: string[], fromXid: string): Promise<{ events: (EventRow & { job: JobRow | null })[]; snapshot: string }> {
      const { rows } = await db.query<JobRow & { snapshot: string; ev: EventRow | null }>(
        `SELECT s.snapshot, CASE WHEN e.xid IS NOT NULL THEN row_to_json(e) END AS ev, j.*
         FROM (SELECT pg_current_snapshot()::text AS snapshot) s
         LEFT JOIN LATERAL (SELECT ${columns} FROM ${table} WHERE xid >= $2::xid8 AND job_id = ANY($1::uuid[])) e ON true
         LEFT JOIN LATERAL (SELECT ${JOB_COLUMNS} FROM ${jobs} WHERE name = e.queue_name AND id = e.job_id) j ON true
         ORDER BY e.seq`,
        [jobIds, fromXid],
      );
      const events = rows.flatMap(({ snapshot: _, ev, ...job }) => (ev ? [{ ...ev, occurred_at: new Date(ev.occurred_at), job: job.id ? job : null }] : []));
      return { events, snapshot: rows[0]!.snapshot };
    },

    /**
     * Deletes up to `limit` events older than `retentionSeconds` and raises the watermark to the
     * newest position deleted; returns how many were deleted.
     */
    async sweep(db: Queryable, retentionSeconds: number, limit: number): Promise<number> {
      const { rows } = await db.query<{ deleted: number }>(
        `WITH gone AS (
           DELETE FROM ${table} WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM ${table} WHERE occurred_at < now() - $1 * interval '1 second' LIMIT $2))
           RETURNING xid, seq
         ), newest AS (
           SELECT xid, seq FROM gone ORDER BY xid DESC, seq DESC LIMIT 1
         ), mark AS (
           INSERT INTO ${watermark} (xid, seq) SELECT xid, seq FROM newest
           ON CONFLICT (singleton) DO UPDATE SET xid = EXCLUDED.xid, seq = EXCLUDED.seq, updated_at = now()
             WHERE (${watermark}.xid, ${watermark}.seq) < (EXCLUDED.xid, EXCLUDED.seq)
         )
         SELECT count(*)::int AS deleted FROM gone`,
        [retentionSeconds, limit],
      );
      return rows[0]!.deleted;
    },

    /**
     * Whether a reader at `after` is behind the retention: events after it were deleted (it is at or
     * before the watermark), or some event after it is older than `retentionSeconds` (due for
     * deletion). A made-up position far back is caught by the second even before retention first
     * ran. Cheap: the BRIN index on `occurred_at` reads only the oldest blocks.
     */
    async expired(db: Queryable, after: EventPosition, retentionSeconds: number): Promise<boolean> {
      const { rows } = await db.query<{ expired: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${watermark} w WHERE (w.xid, w.seq) >= ($1::xid8, $2::bigint))
             OR EXISTS (SELECT 1 FROM ${table} WHERE occurred_at < now() - $3 * interval '1 second' AND (xid, seq) > ($1::xid8, $2::bigint)) AS expired`,
        [after.xid, after.seq, retentionSeconds],
      );
      return rows[0]!.expired;
    },

    /** The newest position deleted by retention, if any. */
    async watermark(db: Queryable): Promise<EventPosition | undefined> {
      const { rows } = await db.query<{ xid: string; seq: number }>(`SELECT xid::text AS xid, seq FROM ${watermark}`);
      return rows[0] ? { xid: rows[0].xid, seq: Number(rows[0].seq) } : undefined;
    },

    /** The position "now": every event served after it comes from a transaction still running or yet to start. */
    async now(db: Queryable): Promise<EventPosition> {
      const { rows } = await db.query<{ horizon: string }>(`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS horizon`);
      return { xid: rows[0]!.horizon, seq: 0 };
    },
  };
}

export type EventQueries = ReturnType<typeof eventQueries>;
