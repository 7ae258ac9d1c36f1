/**
 * SQL of the dead letter queues: pages of dead letters (oldest first) and redrive.
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";
import { JOB_COLUMNS, type JobRow } from "./job-record.js";

/** A dead letter row with its creation time in microseconds (keyset paging). */
export type DeadLetterRow = JobRow & { created_micros: number };

/** The dead letter queries of one installation. */
export function deadLetterQueries(schema: string, bossSchema: string) {
  const job = qualified(bossSchema, "job");
  const queue = qualified(bossSchema, "queue");
  const events = qualified(schema, "job_event");
  const eventChannel = `${qualified(schema, "event_channel")}()`;
  return {
    /** One page of dead letters of the given dead letter queues, oldest first (limit + 1 rows). */
    async list(
      db: Queryable,
      deadLetterQueues: string[],
      principal: string | undefined,
      after: { createdMicros: number; id: string } | undefined,
      limit: number,
    ): Promise<DeadLetterRow[]> {
      const values: unknown[] = [principal ?? null, after?.createdMicros ?? null, after?.id ?? null, limit + 1];
      const branches = deadLetterQueues.map((name) => {
        values.push(name);
        return `(SELECT ${JOB_COLUMNS}, (extract(epoch FROM created_on) * 1000000)::bigint AS created_micros
          FROM ${job}
          WHERE name = $${values.length} AND state < 'active'
            AND ($1::text IS NULL OR data ->> 'principal' = $1)
            AND ($2::bigint IS NULL OR created_on >= timestamptz 'epoch' + $2::bigint * interval '1 microsecond')
            AND ($2::bigint IS NULL OR (created_on, id) > (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid))
          ORDER BY created_on, id
          LIMIT $4)`;
      });
      if (branches.length === 0) return [];
      const { rows } = await db.query<DeadLetterRow>(`SELECT * FROM (${branches.join("\n UNION ALL \n")}) AS page ORDER BY created_on, id LIMIT $4`, values);
      return rows;
    },

    /** The given ids that are waiting in these dead letter queues. */
    async existing(db: Queryable, deadLetterQueues: string[], ids: string[]): Promise<string[]> {
      const { rows } = await db.query<{ id: string }>(`SELECT id FROM ${job} WHERE name = ANY($1::text[]) AND id = ANY($2::uuid[]) AND state < 'active'`, [
        deadLetterQueues,
        ids,
      ]);
      return rows.map((r) => r.id);
    },

    /**
     * Deletes dead letters for good, recording a `purged` event for each and waking event readers
     * (in the caller's transaction): the listed ids, or up to `limit` of those dead-lettered before
     * `before`. Returns how many.
     */
    async purge(db: Queryable, deadLetterQueues: string[], ids: string[] | undefined, before: Date | undefined, limit: number): Promise<number> {
      const { rows } = await db.query<{ purged: number }>(
        `WITH gone AS (
           DELETE FROM ${job} d
           WHERE (d.name, d.id) IN (
             SELECT name, id FROM ${job}
             WHERE name = ANY($1::text[]) AND state < 'active'
               AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[])) AND ($3::timestamptz IS NULL OR created_on < $3)
             LIMIT $4)
           RETURNING d.id, d.name, d.retry_count, d.source_id
         ), recorded AS (
           INSERT INTO ${events} (job_id, queue_name, type, state, previous_state, retry_count, detail)
           SELECT id, name, 'purged', 'failed', 'failed', retry_count, jsonb_build_object('sourceJobId', source_id) FROM gone
           RETURNING 1
         )
         SELECT count(*)::int AS purged FROM recorded`,
        [deadLetterQueues, ids ?? null, before ?? null, limit],
      );
      const purged = rows[0]!.purged;
      if (purged > 0) await db.query(`SELECT pg_notify(${eventChannel}, '')`);
      return purged;
    },

    /**
     * Moves dead letters back to their source queues as new jobs (new ids, the source queue's current
     * policy, the same envelope and so the same root), oldest first: the listed ids, or up to `limit`.
     * Returns the new jobs.
     */
    async redrive(db: Queryable, deadLetterQueues: string[], ids: string[] | undefined, limit: number): Promise<JobRow[]> {
      const { rows } = await db.query<JobRow>(
        `WITH candidates AS (
           SELECT id, name FROM ${job}
           WHERE name = ANY($1::text[]) AND state < 'active' AND ($2::uuid[] IS NULL OR id = ANY($2::uuid[]))
           ORDER BY created_on, id
           LIMIT $3
           FOR UPDATE SKIP LOCKED
         ), moved AS (
           DELETE FROM ${job} d USING candidates c WHERE d.name = c.name AND d.id = c.id
           RETURNING d.*
         )
         INSERT INTO ${job} (id, name, data, priority, retry_limit, retry_delay, retry_backoff, retry_delay_max, expire_seconds,
           start_after, created_on, keep_until, deletion_seconds, policy, dead_letter, heartbeat_seconds, source_root_id, group_id)
         SELECT gen_random_uuid(), m.source_name, m.data - 'cancelRequested', m.priority, q.retry_limit, q.retry_delay, q.retry_backoff,
           q.retry_delay_max, q.expire_seconds, now(), now(), now() + q.retention_seconds * interval '1 second', q.deletion_seconds,
           q.policy, q.dead_letter, q.heartbeat_seconds, COALESCE(m.source_root_id, m.source_id),
           m.data ->> 'concurrencyKey'
         FROM moved m JOIN ${queue} q ON q.name = m.source_name
         ORDER BY m.created_on, m.id
         RETURNING ${JOB_COLUMNS}`,
        [deadLetterQueues, ids ?? null, limit],
      );
      return rows;
    },
  };
}

export type DeadLetterQueries = ReturnType<typeof deadLetterQueries>;
