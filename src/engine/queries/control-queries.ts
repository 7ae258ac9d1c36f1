/**
 * SQL of queue control: pauses, rate limits and their token buckets.
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";

/** A pause of a queue. */
export interface PauseRow {
  queue: string;
  paused_at: Date;
  paused_by: string;
}

/** A rate limit. */
export interface RateLimitRow {
  scope: "job_type" | "queue" | "api_principal";
  key: string;
  max_events: number;
  interval_ms: number;
  updated_at: Date;
  updated_by: string;
}

/** The control queries of one installation. */
export function controlQueries(schema: string) {
  const pause = qualified(schema, "queue_pause");
  const limit = qualified(schema, "rate_limit");
  const bucket = qualified(schema, "rate_bucket");
  const channel = `${qualified(schema, "control_channel")}()`;
  const pauseLock = (queue: string) => [`queue-service:pause:${schema}:${queue}`];
  return {
    async pauses(db: Queryable): Promise<PauseRow[]> {
      return (await db.query<PauseRow>(`SELECT queue, paused_at, paused_by FROM ${pause}`)).rows;
    },

    /**
     * Pauses a queue (idempotent). Waits for fetches of the queue already under way to commit, so that
     * once this transaction commits no replica can start a job of it.
     */
    async pause(db: Queryable, queue: string, by: string): Promise<PauseRow> {
      await db.query(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, pauseLock(queue));
      await db.query(`INSERT INTO ${pause} (queue, paused_by) VALUES ($1, $2) ON CONFLICT (queue) DO NOTHING`, [queue, by]);
      await db.query(`SELECT pg_notify(${channel}, $1)`, [`pause:${queue}`]);
      return (await db.query<PauseRow>(`SELECT queue, paused_at, paused_by FROM ${pause} WHERE queue = $1`, [queue])).rows[0]!;
    },

    /** Resumes a queue (idempotent). */
    async resume(db: Queryable, queue: string): Promise<void> {
      await db.query(`DELETE FROM ${pause} WHERE queue = $1`, [queue]);
      await db.query(`SELECT pg_notify(${channel}, $1)`, [`resume:${queue}`]);
    },

    async limits(db: Queryable): Promise<RateLimitRow[]> {
      return (await db.query<RateLimitRow>(`SELECT scope, key, max_events, interval_ms, updated_at, updated_by FROM ${limit} ORDER BY scope, key`)).rows;
    },

    /** Creates or replaces a limit; its bucket starts full. */
    async setLimit(db: Queryable, row: Omit<RateLimitRow, "updated_at">): Promise<RateLimitRow> {
      const { rows } = await db.query<RateLimitRow>(
        `INSERT INTO ${limit} (scope, key, max_events, interval_ms, updated_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (scope, key) DO UPDATE SET max_events = EXCLUDED.max_events, interval_ms = EXCLUDED.interval_ms,
           updated_by = EXCLUDED.updated_by, updated_at = now()
         RETURNING scope, key, max_events, interval_ms, updated_at, updated_by`,
        [row.scope, row.key, row.max_events, row.interval_ms, row.updated_by],
      );
      await db.query(
        `INSERT INTO ${bucket} (scope, key, tokens) VALUES ($1, $2, $3)
         ON CONFLICT (scope, key) DO UPDATE SET tokens = LEAST(${bucket}.tokens, EXCLUDED.tokens)`,
        [row.scope, row.key, row.max_events],
      );
      await db.query(`SELECT pg_notify(${channel}, $1)`, [`limit:${row.scope}:${row.key}`]);
      return rows[0]!;
    },

    async deleteLimit(db: Queryable, scope: string, key: string): Promise<boolean> {
      const { rowCount } = await db.query(`DELETE FROM ${limit} WHERE scope = $1 AND key = $2`, [scope, key]);
      await db.query(`SELECT pg_notify(${channel}, $1)`, [`limit:${scope}:${key}`]);
      return (rowCount ?? 0) > 0;
    },

    /**
     * Takes up to `wanted` tokens from every bucket of `scopes` at once (the least available decides),
     * refilling each by the time passed. Returns the tokens granted and, when none, how long until the
     * next one; undefined when no limit applies.
     */
    async take(db: Queryable, scopes: { scope: string; key: string }[], wanted: number): Promise<{ granted: number; waitMs: number } | undefined> {
      const { rows } = await db.query<{ granted: number; wait_ms: number }>(
        `WITH b AS (
           SELECT b.scope, b.key,
                  LEAST(l.max_events::float8, b.tokens + GREATEST(0, extract(epoch FROM clock_timestamp() - b.refilled_at) * 1000) * l.max_events / l.interval_ms) AS available,
                  l.max_events::float8 / l.interval_ms AS per_ms
           FROM ${bucket} b JOIN ${limit} l USING (scope, key)
           WHERE (b.scope, b.key) IN (SELECT * FROM unnest($1::text[], $2::text[]))
           ORDER BY b.scope, b.key
           FOR UPDATE OF b
         ), g AS (
           SELECT LEAST($3::int, floor(min(available)))::int AS granted,
                  max(CASE WHEN available >= 1 THEN 0 ELSE ceil((1 - available) / per_ms) END)::int AS wait_ms
           FROM b
         ), u AS (
           UPDATE ${bucket} t SET tokens = b.available - g.granted, refilled_at = clock_timestamp()
           FROM b, g WHERE t.scope = b.scope AND t.key = b.key
         )
         SELECT granted, wait_ms FROM g WHERE EXISTS (SELECT 1 FROM b)`,
        [scopes.map((s) => s.scope), scopes.map((s) => s.key), wanted],
      );
      return rows[0] ? { granted: rows[0].granted, waitMs: rows[0].wait_ms } : undefined;
    },

    /** Returns tokens a fetch did not use. */
    async giveBack(db: Queryable, scopes: { scope: string; key: string }[], unused: number): Promise<void> {
      await db.query(
        `UPDATE ${bucket} b SET tokens = LEAST(l.max_events, b.tokens + $3)
         FROM ${limit} l WHERE l.scope = b.scope AND l.key = b.key AND (b.scope, b.key) IN (SELECT * FROM unnest($1::text[], $2::text[]))`,
        [scopes.map((s) => s.scope), scopes.map((s) => s.key), unused],
      );
    },
  };
}

export type ControlQueries = ReturnType<typeof controlQueries>;
