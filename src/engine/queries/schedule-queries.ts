/**
 * SQL of schedules (migration 0016): the rows ScheduleService manages, and the ticker's claim of the
 * due ones (FOR UPDATE SKIP LOCKED: one replica per schedule per tick).
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";

/** Options of each scheduled job, as set (unset: the queue's policy when the job is added). */
export interface ScheduleOptions {
  priority?: number;
  retryLimit?: number;
  retryDelaySeconds?: number;
  retryBackoff?: boolean;
  expireInSeconds?: number;
  concurrencyKey?: string;
}

export interface ScheduleRow {
  name: string;
  type: string;
  cron: string;
  time_zone: string;
  payload: Record<string, unknown>;
  options: ScheduleOptions;
  paused: boolean;
  next_run_at: Date | null;
  last_run_at: Date | null;
  last_job_id: string | null;
  created_by: string;
  created_at: Date;
  updated_at: Date;
}

export interface ScheduleWrite {
  name: string;
  type: string;
  cron: string;
  timeZone: string;
  payload: Record<string, unknown>;
  options: ScheduleOptions;
  nextRunAt: Date | null;
}

const COLUMNS =
  "name, type, cron, time_zone, payload, options, paused, next_run_at, last_run_at, last_job_id::text AS last_job_id, created_by, created_at, updated_at";

/** The schedule queries of one installation. */
export function scheduleQueries(schema: string) {
  const table = qualified(schema, "schedule");
  return {
    /** Inserts a schedule; undefined when the name is taken. */
    async insert(db: Queryable, s: ScheduleWrite, createdBy: string): Promise<ScheduleRow | undefined> {
      const { rows } = await db.query<ScheduleRow>(
        `INSERT INTO ${table} (name, type, cron, time_zone, payload, options, next_run_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (name) DO NOTHING RETURNING ${COLUMNS}`,
        [s.name, s.type, s.cron, s.timeZone, s.payload, s.options, s.nextRunAt, createdBy],
      );
      return rows[0];
    },

    async get(db: Queryable, name: string, lock = false): Promise<ScheduleRow | undefined> {
      const { rows } = await db.query<ScheduleRow>(`SELECT ${COLUMNS} FROM ${table} WHERE name = $1${lock ? " FOR UPDATE" : ""}`, [name]);
      return rows[0];
    },

    /** Schedules by name, after `after`. */
    async list(db: Queryable, limit: number, after?: string): Promise<ScheduleRow[]> {
      const { rows } = await db.query<ScheduleRow>(`SELECT ${COLUMNS} FROM ${table} WHERE $1::text IS NULL OR name > $1 ORDER BY name LIMIT $2`, [
        after ?? null,
        limit,
      ]);
      return rows;
    },

    /** Replaces the definition (next_run_at recomputed by the caller, unchanged while paused). */
    async update(db: Queryable, s: ScheduleWrite): Promise<ScheduleRow | undefined> {
      const { rows } = await db.query<ScheduleRow>(
        `UPDATE ${table} SET type = $2, cron = $3, time_zone = $4, payload = $5, options = $6,
           next_run_at = CASE WHEN paused THEN NULL ELSE $7::timestamptz END, updated_at = now()
         WHERE name = $1 RETURNING ${COLUMNS}`,
        [s.name, s.type, s.cron, s.timeZone, s.payload, s.options, s.nextRunAt],
      );
      return rows[0];
    },

    async remove(db: Queryable, name: string): Promise<boolean> {
      const { rowCount } = await db.query(`DELETE FROM ${table} WHERE name = $1`, [name]);
      return (rowCount ?? 0) > 0;
    },

    /** Pauses (next_run_at cleared) or resumes (next_run_at as given). */
    async setPaused(db: Queryable, name: string, paused: boolean, nextRunAt: Date | null): Promise<ScheduleRow | undefined> {
      const { rows } = await db.query<ScheduleRow>(
        `UPDATE ${table} SET paused = $2, next_run_at = $3, updated_at = now() WHERE name = $1 RETURNING ${COLUMNS}`,
        [name, paused, nextRunAt],
      );
      return rows[0];
    },

    /** Locks up to `limit` due schedules no other replica holds (soonest first). */
    async claimDue(db: Queryable, limit: number): Promise<ScheduleRow[]> {
      const { rows } = await db.query<ScheduleRow>(
        `SELECT ${COLUMNS} FROM ${table} WHERE NOT paused AND next_run_at <= now() ORDER BY next_run_at LIMIT $1 FOR UPDATE SKIP LOCKED`,
        [limit],
      );
      return rows;
    },

    /** Records a tick's job and the next tick. */
    async ticked(db: Queryable, name: string, tick: Date, jobId: string | null, next: Date | null): Promise<void> {
      await db.query(
        `UPDATE ${table} SET last_run_at = CASE WHEN $3::uuid IS NULL THEN last_run_at ELSE $2 END, last_job_id = COALESCE($3::uuid, last_job_id), next_run_at = $4 WHERE name = $1`,
        [name, tick, jobId, next],
      );
    },

    /** When the soonest schedule is due (undefined: none is). */
    async nextDue(db: Queryable): Promise<Date | undefined> {
      const { rows } = await db.query<{ at: Date | null }>(`SELECT min(next_run_at) AS at FROM ${table} WHERE NOT paused`);
      return rows[0]?.at ?? undefined;
    },
  };
}

export type ScheduleQueries = ReturnType<typeof scheduleQueries>;
