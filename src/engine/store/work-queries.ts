/**
 * The workers' side of the job store: claims through pg-boss's own fetch, completions in batches,
 * heartbeats that also say whether a job was asked to cancel, failures through pg-boss's fail (its
 * retry, backoff and dead letter rules), and the outcomes pg-boss has no call for. Every statement is
 * fenced to the attempt (`retry_count` as fetched, state `active`): a worker that lost its lease
 * changes nothing.
 */
import type { JobWithMetadata, PgBoss } from "pg-boss";
import { inTransaction, type Pool, type PoolClient, type Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";
import { type Envelope, type JobRow, jobColumns } from "./job-record.js";

/** One attempt of a job: its id and the retry count it was fetched with. */
export interface Attempt {
  id: string;
  retryCount: number;
}

/** A claimed attempt, as pg-boss's fetch returns it. */
export type ClaimedJob = JobWithMetadata<Envelope>;

/** The columns of a claimed job under the names pg-boss's fetch gives them (what {@link rowOfClaimed} reads). */
const CLAIMED_COLUMNS = `j.id, j.name, j.data, j.state, j.priority, j.retry_count AS "retryCount", j.retry_limit AS "retryLimit",
  j.retry_delay AS "retryDelay", j.retry_backoff AS "retryBackoff", j.expire_seconds AS "expireInSeconds",
  j.heartbeat_seconds AS "heartbeatSeconds", j.group_id AS "groupId", j.created_on AS "createdOn", j.start_after AS "startAfter",
  j.started_on AS "startedOn", j.completed_on AS "completedOn", j.output, j.dead_letter AS "deadLetter", j.source_id AS "sourceId",
  j.source_root_id AS "sourceRootId", j.source_retry_count AS "sourceRetryCount"`;

/** A claimed attempt as a job row (what pg-boss's fetch returned: the row right after the claim). */
export function rowOfClaimed(job: ClaimedJob): JobRow {
  return {
    id: job.id,
    name: job.name,
    data: job.data,
    state: job.state,
    priority: job.priority,
    retry_count: job.retryCount,
    retry_limit: job.retryLimit,
    retry_delay: job.retryDelay,
    retry_backoff: job.retryBackoff,
    expire_seconds: job.expireInSeconds,
    created_on: job.createdOn,
    start_after: job.startAfter,
    started_on: job.startedOn,
    completed_on: job.completedOn,
    output: job.output,
    dead_letter: job.deadLetter,
    source_id: job.sourceId,
    source_root_id: job.sourceRootId,
    source_retry_count: job.sourceRetryCount,
    source_output: null,
    blocked: false,
  };
}

/** pg-boss's commands on a connection of the caller's (its `db` option). */
const onClient = (client: PoolClient) => ({
  executeSql: (text: string, values?: unknown[]) => client.query(text, values) as Promise<{ rows: any[] }>,
});

/** The work queries of one installation. */
export function workQueries(bossSchema: string, boss: PgBoss) {
  const job = qualified(bossSchema, "job");

  /** Completes the attempts still active with their retry counts, returning `returning` of each. */
  async function completeAttempts<R extends object>(
    db: Queryable,
    bossQueue: string,
    done: (Attempt & { output: unknown })[],
    returning: string,
  ): Promise<R[]> {
    const { rows } = await db.query<R>(
      `UPDATE ${job} j SET state = 'completed', completed_on = now(), output = r.output
       FROM jsonb_to_recordset($2::jsonb) AS r(id uuid, retry_count int, output jsonb)
       WHERE j.name = $1 AND j.id = r.id AND j.retry_count = r.retry_count AND j.state = 'active'
       RETURNING ${returning}`,
      [bossQueue, JSON.stringify(done.map((d) => ({ id: d.id, retry_count: d.retryCount, output: d.output })))],
    );
    return rows;
  }

  return {
    /** Claims up to `max` runnable jobs of a pg-boss queue (pg-boss's `FOR UPDATE SKIP LOCKED` fetch). */
    claim(bossQueue: string, max: number): Promise<ClaimedJob[]> {
      return boss.fetch<Envelope>(bossQueue, { batchSize: max, includeMetadata: true });
    },

    /**
     * Claims up to `max` runnable jobs of a pg-boss queue of a queue with a key limit: at most `limit`
     * jobs of each concurrency key (pg-boss's `group_id`) run at once across `siblings` (the queue's
     * job types), jobs without a key unlimited. pg-boss's own `groupConcurrency` fetch is not used: it
     * counts one job type only, it picks its candidates before the key filter (a backlog of one key
     * ahead of another's jobs would hold those back), and two claims at once can both see a key's
     * place free. Here claims of one queue take turns (a transaction-scoped advisory lock, so each
     * sees the one before it committed), and every key's first ready jobs are candidates. Cost: the
     * queue type's ready jobs are ranked per key, O(ready jobs) per claim. `started_on` is the time of
     * the claim itself, after the lock: the transaction's start may precede the completion that
     * freed the key's place.
     */
    async claimKeyed(pool: Pool, queue: string, bossQueue: string, max: number, limit: number, siblings: readonly string[]): Promise<ClaimedJob[]> {
      return inTransaction(pool, async (client) => {
        await client.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`queue-service:key-claim:${bossSchema}:${queue}`]);
        const { rows } = await client.query<ClaimedJob>(
          `WITH running AS (
             SELECT group_id, count(*)::int AS n FROM ${job}
             WHERE name = ANY($3::text[]) AND state = 'active' AND group_id IS NOT NULL
             GROUP BY group_id
           ), ready AS (
             SELECT j.id, j.group_id, j.priority, j.created_on,
               row_number() OVER (PARTITION BY j.group_id ORDER BY j.priority DESC, j.created_on) AS place
             FROM ${job} j
             WHERE j.name = $1 AND j.state < 'active' AND NOT j.blocked AND j.start_after <= now()
           ), picked AS (
             SELECT r.id FROM ready r LEFT JOIN running a ON a.group_id = r.group_id
             WHERE r.group_id IS NULL OR r.place + COALESCE(a.n, 0) <= $4
             ORDER BY r.priority DESC, r.created_on
             LIMIT $2
           )
           UPDATE ${job} j SET state = 'active', started_on = clock_timestamp(), heartbeat_on = clock_timestamp(),
             retry_count = CASE WHEN j.started_on IS NOT NULL THEN j.retry_count + 1 ELSE j.retry_count END
           WHERE j.name = $1 AND j.id = ANY (ARRAY(SELECT id FROM picked)) AND j.state < 'active'
           RETURNING ${CLAIMED_COLUMNS}`,
          [bossQueue, max, siblings, limit],
        );
        return rows;
      });
    },

    /**
     * Fails an attempt by pg-boss's rules (a retry by the policy, or failed and dead-lettered); a
     * permanent failure first leaves the attempt no retries. In one transaction; fenced to the attempt.
     */
    async fail(pool: Pool, bossQueue: string, attempt: Attempt, output: object, permanent: boolean): Promise<void> {
      await inTransaction(pool, (client) => this.failOn(client, bossQueue, attempt, output, permanent));
    },

    /** {@link fail} inside the caller's transaction. */
    async failOn(client: PoolClient, bossQueue: string, attempt: Attempt, output: object, permanent: boolean): Promise<void> {
      if (permanent) await this.exhaustRetries(client, bossQueue, attempt);
      await boss.fail(bossQueue, { id: attempt.id, retryCount: attempt.retryCount }, output, { db: onClient(client) });
    },

    /** Completes attempts with their own outputs; returns the ids that were still theirs. */
    async complete(db: Queryable, bossQueue: string, done: (Attempt & { output: unknown })[]): Promise<string[]> {
      return (await completeAttempts<{ id: string }>(db, bossQueue, done, "j.id")).map((r) => r.id);
    },

    /** {@link complete}, returning the completed jobs' rows. */
    completeReturning(db: Queryable, bossQueue: string, done: (Attempt & { output: unknown })[]): Promise<JobRow[]> {
      return completeAttempts<JobRow>(db, bossQueue, done, jobColumns("j"));
    },

    /**
     * Refreshes the leases of attempts; returns those still held, with whether each was asked to
     * cancel. An attempt missing from the answer lost its lease.
     */
    async heartbeat(db: Queryable, bossQueue: string, attempts: Attempt[]): Promise<{ id: string; cancel: boolean; expires_at: Date }[]> {
      const { rows } = await db.query<{ id: string; cancel: boolean; expires_at: Date }>(
        `UPDATE ${job} j SET heartbeat_on = now()
         FROM unnest($2::uuid[], $3::int[]) AS a(id, retry_count)
         WHERE j.name = $1 AND j.id = a.id AND j.retry_count = a.retry_count AND j.state = 'active'
         RETURNING j.id, COALESCE((j.data ->> 'cancelRequested')::boolean, false) AS cancel,
           now() + COALESCE(j.heartbeat_seconds, 10) * interval '1 second' AS expires_at`,
        [bossQueue, attempts.map((a) => a.id), attempts.map((a) => a.retryCount)],
      );
      return rows;
    },

    /** Ends an attempt whose handler stopped on a cancel request: the job is cancelled. */
    async cancel(db: Queryable, bossQueue: string, attempt: Attempt, output: unknown): Promise<boolean> {
      const { rowCount } = await db.query(
        `UPDATE ${job} SET state = 'cancelled', completed_on = now(), output = $4::jsonb
         WHERE name = $1 AND id = $2 AND retry_count = $3 AND state = 'active'`,
        [bossQueue, attempt.id, attempt.retryCount, JSON.stringify(output)],
      );
      return (rowCount ?? 0) > 0;
    },

    /**
     * Locks a running attempt's row for the rest of the transaction; undefined when the attempt no
     * longer runs (its lease was lost). Says whether the job was asked to cancel.
     */
    async lockAttempt(db: Queryable, bossQueue: string, attempt: Attempt): Promise<{ cancel: boolean } | undefined> {
      const { rows } = await db.query<{ cancel: boolean }>(
        `SELECT COALESCE((data ->> 'cancelRequested')::boolean, false) AS cancel FROM ${job}
         WHERE name = $1 AND id = $2 AND retry_count = $3 AND state = 'active' FOR UPDATE`,
        [bossQueue, attempt.id, attempt.retryCount],
      );
      return rows[0];
    },

    /** Records running attempts' progress (`data.progress`); returns the ids that were still theirs. */
    async progress(db: Queryable, bossQueue: string, reports: (Attempt & { progress: object })[]): Promise<string[]> {
      const { rows } = await db.query<{ id: string }>(
        `UPDATE ${job} j SET data = jsonb_set(j.data, '{progress}', r.progress)
         FROM jsonb_to_recordset($2::jsonb) AS r(id uuid, retry_count int, progress jsonb)
         WHERE j.name = $1 AND j.id = r.id AND j.retry_count = r.retry_count AND j.state = 'active'
         RETURNING j.id`,
        [bossQueue, JSON.stringify(reports.map((r) => ({ id: r.id, retry_count: r.retryCount, progress: r.progress })))],
      );
      return rows.map((r) => r.id);
    },

    /** Whether an attempt is still running (its job is active with this retry count). */
    async attemptRunning(db: Queryable, id: string, retryCount: number): Promise<boolean> {
      const { rows } = await db.query(`SELECT 1 FROM ${job} WHERE id = $1 AND retry_count = $2 AND state = 'active'`, [id, retryCount]);
      return rows.length > 0;
    },

    /** Leaves an attempt no retries, so that failing it fails the job for good (and dead-letters it). */
    async exhaustRetries(db: Queryable, bossQueue: string, attempt: Attempt): Promise<boolean> {
      const { rowCount } = await db.query(`UPDATE ${job} SET retry_limit = retry_count WHERE name = $1 AND id = $2 AND retry_count = $3 AND state = 'active'`, [
        bossQueue,
        attempt.id,
        attempt.retryCount,
      ]);
      return (rowCount ?? 0) > 0;
    },
  };
}

export type WorkQueries = ReturnType<typeof workQueries>;
