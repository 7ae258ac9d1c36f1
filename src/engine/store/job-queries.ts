/**
 * SQL on pg-boss's job table for the job API: insert, lookups, lists, cancel and retry. Schema names
 * are quoted once when the module is created; every value is a parameter.
 */
import pg, { type CustomTypesConfig } from "pg";
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";
import { JOB_COLUMNS, type JobRow, type JobStateName } from "./job-record.js";

/** One row to insert, with every policy value resolved. */
export interface JobInsertRow {
  id: string;
  bossQueue: string;
  data: object;
  priority: number;
  /** Absolute start, or null to start `delayMs` after the transaction's time. */
  startAt: Date | null;
  delayMs: number;
  retryLimit: number;
  retryDelaySeconds: number;
  retryBackoff: boolean;
  retryDelayMaxSeconds: number;
  expireInSeconds: number;
  deleteAfterSeconds: number;
  retentionSeconds: number;
  deadLetter: string;
  heartbeatSeconds: number;
  /** Parents the job still waits for (0: none; it is then not blocked). */
  pendingParents: number;
  /** The concurrency key (pg-boss's `group_id`), or null. */
  groupId: string | null;
}

/** What the database decided for an inserted job. */
export interface InsertedJob {
  id: string;
  created_on: Date;
  start_after: Date;
}

/** Filters of a job list. */
export interface JobListFilter {
  bossQueues: readonly string[];
  /** Those of `bossQueues` that are dead letter queues. */
  deadLetterQueues?: string[];
  principal?: string;
  states?: JobStateName[];
  idempotencyKey?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  /** Keyset position: strictly older than (createdMicros, id). */
  after?: { createdMicros: number; id: string };
  limit: number;
}

/** A list row carries its creation time in microseconds for exact keyset paging. */
export type JobListRow = JobRow & { created_micros: number };

/*
 * Array parameters as PostgreSQL array literals. node-postgres would quote and escape every element
 * of a JS array; these columns hold integers, UUIDs and a few distinct names, so most need no
 * quoting at all and each distinct text is escaped once.
 */
const intArray = (values: number[]) => {
  for (const v of values) if (!Number.isSafeInteger(v)) throw new TypeError(`not an integer: ${v}`);
  return `{${values.join(",")}}`;
};
/** UUIDs need no quoting; PostgreSQL checks their format, this only keeps the literal's syntax intact. */
const uuidArray = (values: string[]) => {
  const list = values.join(",");
  if (!/^[0-9a-f,-]*$/i.test(list)) throw new TypeError("not a list of UUIDs");
  return `{${list}}`;
};
const boolArray = (values: boolean[]) => `{${values.map((v) => (v ? "t" : "f")).join(",")}}`;
const quoteElement = (v: string) => `"${v.replaceAll("\\", "\\\\").replaceAll('"', '\\"')}"`;
const textArray = (values: (string | null)[]) => {
  const quoted = new Map<string, string>();
  const element = (v: string | null) => {
    if (v === null) return "NULL";
    let q = quoted.get(v);
    if (q === undefined) {
      q = quoteElement(v);
      quoted.set(v, q);
    }
    return q;
  };
  return `{${values.map(element).join(",")}}`;
};
const timestampArray = (values: (Date | null)[]) => `{${values.map((v) => (v === null ? "NULL" : `"${v.toISOString()}"`)).join(",")}}`;

/**
 * Type parsers for a statement whose rows repeat the same timestamps: each distinct text is parsed
 * once by node-postgres's own parser (every row still gets a Date of its own).
 */
function repeatedTimestamps(): CustomTypesConfig {
  const parseTimestamptz = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, "text") as (text: string) => unknown;
  let lastText: string | undefined;
  let last: unknown;
  const cached = (text: string) => {
    if (text !== lastText) {
      last = parseTimestamptz(text);
      lastText = text;
    }
    return last instanceof Date ? new Date(last.getTime()) : last;
  };
  return {
    getTypeParser: ((oid: number, format?: "text" | "binary") =>
      oid === pg.types.builtins.TIMESTAMPTZ && format !== "binary" ? cached : pg.types.getTypeParser(oid, format)) as CustomTypesConfig["getTypeParser"],
  };
}

/** The job queries of one installation. */
export function jobQueries(bossSchema: string) {
  const job = qualified(bossSchema, "job");
  const jobState = qualified(bossSchema, "job_state");

  return {
    /**
     * Inserts jobs (any queues) through the partitioned parent, in one statement. Each column travels
     * as one array parameter (the envelopes as one JSON array), zipped back into rows by `ROWS FROM`:
     * PostgreSQL parses only the envelopes as JSON, not every column of every row. Returns what the
     * database decided for each job: id, creation and start times.
     */
    async insert(db: Queryable, rows: JobInsertRow[]): Promise<InsertedJob[]> {
      if (rows.length === 0) return [];
      const column = <T>(value: (r: JobInsertRow) => T) => rows.map(value);
      const { rows: inserted } = await db.query<InsertedJob>({
        text: `INSERT INTO ${job} (id, name, data, priority, start_after, created_on, expire_seconds, deletion_seconds, keep_until,
           retry_limit, retry_delay, retry_backoff, retry_delay_max, policy, dead_letter, heartbeat_seconds, blocked, pending_dependencies, group_id)
         SELECT r.id, r.name, r.data, r.priority, s.start_after, now(), r.expire_seconds, r.deletion_seconds,
           s.start_after + r.retention_seconds * interval '1 second',
           r.retry_limit, r.retry_delay, r.retry_backoff, r.retry_delay_max, 'standard', r.dead_letter, r.heartbeat_seconds,
           r.pending > 0, r.pending, r.group_id
         FROM ROWS FROM (unnest($1::uuid[]), unnest($2::text[]), jsonb_array_elements($3::jsonb), unnest($4::int[]),
             unnest($5::timestamptz[]), unnest($6::bigint[]), unnest($7::int[]), unnest($8::int[]), unnest($9::bool[]),
             unnest($10::int[]), unnest($11::int[]), unnest($12::int[]), unnest($13::int[]), unnest($14::text[]), unnest($15::int[]),
             unnest($16::int[]), unnest($17::text[]))
           AS r(id, name, data, priority, start_at, delay_ms, retry_limit, retry_delay, retry_backoff, retry_delay_max,
                expire_seconds, deletion_seconds, retention_seconds, dead_letter, heartbeat_seconds, pending, group_id)
         CROSS JOIN LATERAL (SELECT COALESCE(r.start_at, now() + r.delay_ms * interval '1 millisecond') AS start_after) s
         RETURNING id, created_on, start_after`,
        values: [
          uuidArray(column((r) => r.id)),
          textArray(column((r) => r.bossQueue)),
          JSON.stringify(column((r) => r.data)),
          intArray(column((r) => r.priority)),
          timestampArray(column((r) => r.startAt)),
          intArray(column((r) => r.delayMs)),
          intArray(column((r) => r.retryLimit)),
          intArray(column((r) => r.retryDelaySeconds)),
          boolArray(column((r) => r.retryBackoff)),
          intArray(column((r) => r.retryDelayMaxSeconds)),
          intArray(column((r) => r.expireInSeconds)),
          intArray(column((r) => r.deleteAfterSeconds)),
          intArray(column((r) => r.retentionSeconds)),
          textArray(column((r) => r.deadLetter)),
          intArray(column((r) => r.heartbeatSeconds)),
          intArray(column((r) => r.pendingParents)),
          textArray(column((r) => r.groupId)),
        ],
        // Every row of the statement has the same created_on, and most the same start_after.
        types: repeatedTimestamps(),
      });
      return inserted;
    },

    /** Jobs by id, of the given pg-boss queues, optionally only a principal's. */
    async byIds(db: Queryable, ids: string[], bossQueues: readonly string[], principal?: string): Promise<JobRow[]> {
      if (ids.length === 0) return [];
      const { rows } = await db.query<JobRow>(
        `SELECT ${JOB_COLUMNS} FROM ${job}
         WHERE id = ANY($1::uuid[]) AND name = ANY($2::text[]) AND ($3::text IS NULL OR data ->> 'principal' = $3)`,
        [ids, bossQueues, principal ?? null],
      );
      return rows;
    },

    /**
     * Jobs with the database snapshot they were read in (`pg_current_snapshot()`), so that a watcher
     * can tell which later events a job already reflects.
     */
    async byIdsWithSnapshot(db: Queryable, ids: string[], bossQueues: readonly string[]): Promise<{ rows: JobRow[]; snapshot: string }> {
      const { rows } = await db.query<JobRow & { snapshot: string }>(
        `SELECT ${JOB_COLUMNS}, s.snapshot FROM (SELECT pg_current_snapshot()::text AS snapshot) s
         LEFT JOIN ${job} ON id = ANY($1::uuid[]) AND name = ANY($2::text[])`,
        [ids, bossQueues],
      );
      return { rows: rows.filter((r) => r.id !== null), snapshot: rows[0]!.snapshot };
    },

    /** Locks one job row for a state change in this transaction. */
    async lockById(db: Queryable, id: string, bossQueues: readonly string[]): Promise<JobRow | undefined> {
      const { rows } = await db.query<JobRow>(`SELECT ${JOB_COLUMNS} FROM ${job} WHERE id = $1 AND name = ANY($2::text[]) FOR UPDATE`, [id, bossQueues]);
      return rows[0];
    },

    /** The dead letter copies of failed jobs: source job id -> dead letter id. */
    async deadLetterCopies(db: Queryable, jobs: { id: string; root: string; deadLetterQueue: string }[]): Promise<Map<string, string>> {
      if (jobs.length === 0) return new Map();
      const { rows } = await db.query<{ source_id: string; id: string }>(
        `SELECT d.source_id, d.id FROM ${job} d
         JOIN unnest($1::uuid[], $2::uuid[], $3::text[]) AS f(id, root, dlq)
           ON d.source_root_id = f.root AND d.source_id = f.id AND d.name = f.dlq`,
        [jobs.map((j) => j.id), jobs.map((j) => j.root), jobs.map((j) => j.deadLetterQueue)],
      );
      return new Map(rows.map((r) => [r.source_id, r.id]));
    },

    /** Jobs of the same line (dead letter copies, redriven jobs) created at or after `since`, other than `id`. */
    async laterInLine(db: Queryable, root: string, id: string, since: Date): Promise<{ id: string; name: string }[]> {
      const { rows } = await db.query<{ id: string; name: string }>(
        `SELECT id, name FROM ${job} WHERE source_root_id = $1 AND id <> $2 AND created_on >= $3 ORDER BY created_on LIMIT 5`,
        [root, id, since],
      );
      return rows;
    },

    /**
     * One page of jobs, newest first (one more than `limit` rows, to tell whether there is a next page).
     *
     * One branch per pg-boss queue, each with `name = $n`: within a partition that equality lets the
     * (name, created_on) index (or the principal's (principal, created_on, id) index) walk backwards
     * from the keyset position, and the branches merge. A single `name = ANY(...)` scan cannot use
     * either index for the order and sorts the whole table instead.
     */
    async list(db: Queryable, f: JobListFilter): Promise<JobListRow[]> {
      const values: unknown[] = [
        f.principal ?? null,
        f.idempotencyKey ?? null,
        f.createdAfter ?? null,
        f.createdBefore ?? null,
        f.after?.createdMicros ?? null,
        f.after?.id ?? null,
        f.limit + 1,
      ];
      // One branch per pg-boss queue, and per state when states are asked for, so that each walks an
      // index backwards from the keyset position: (name, created_on) or, for a state, (name, state,
      // created_on, id): a rare state among many newer jobs is found without walking them.
      const branch = (name: string, state: string | undefined) => {
        values.push(name);
        const nameParam = values.length;
        let stateCond = "";
        if (state) {
          // WAITING is pg-boss's `created` and blocked.
          values.push(state === "waiting" ? "created" : state);
          stateCond = `AND state = $${values.length}::${jobState}${state === "waiting" ? " AND blocked" : state === "created" ? " AND NOT blocked" : ""}`;
        }
        return `(SELECT ${JOB_COLUMNS}, (extract(epoch FROM created_on) * 1000000)::bigint AS created_micros
          FROM ${job}
          WHERE name = $${nameParam} ${stateCond}
            AND ($1::text IS NULL OR data ->> 'principal' = $1)
            AND ($2::text IS NULL OR data ->> 'idempotencyKey' = $2)
            AND ($3::timestamptz IS NULL OR created_on >= $3)
            AND ($4::timestamptz IS NULL OR created_on < $4)
            AND ($5::bigint IS NULL OR created_on <= timestamptz 'epoch' + $5::bigint * interval '1 microsecond')
            AND ($5::bigint IS NULL OR (created_on, id) < (timestamptz 'epoch' + $5::bigint * interval '1 microsecond', $6::uuid))
          ORDER BY created_on DESC, id DESC
          LIMIT $7)`;
      };
      const states = f.states && f.states.length > 0 ? [...new Set(f.states)] : undefined;
      const branches = f.bossQueues.flatMap((name) => {
        // A dead letter is reported FAILED whatever its row's state: it matches a FAILED filter, whole.
        if (f.deadLetterQueues?.includes(name)) return !states || states.includes("failed") ? [branch(name, undefined)] : [];
        return states ? states.map((state) => branch(name, state)) : [branch(name, undefined)];
      });
      if (branches.length === 0) return [];
      const { rows } = await db.query<JobListRow>(
        `SELECT * FROM (${branches.join("\n UNION ALL \n")}) AS page ORDER BY created_on DESC, id DESC LIMIT $7`,
        values,
      );
      return rows;
    },

    /** Whether any job of these pg-boss queues is waiting or running (in a dead letter queue: kept). */
    async anyLive(db: Queryable, bossQueues: string[]): Promise<boolean> {
      const { rows } = await db.query<{ live: boolean }>(
        `SELECT EXISTS (SELECT 1 FROM ${job} WHERE name = ANY($1::text[]) AND state IN ('created', 'retry', 'active')) AS live`,
        [bossQueues],
      );
      return rows[0]!.live;
    },

    /**
     * Cancels a waiting job (created, retry or waiting for parents). A job waiting for parents stops
     * waiting: retried later, it runs at once.
     */
    async cancelWaiting(db: Queryable, name: string, id: string): Promise<JobRow | undefined> {
      const { rows } = await db.query<JobRow>(
        `UPDATE ${job} SET state = 'cancelled', completed_on = now(), blocked = false, pending_dependencies = 0
         WHERE name = $1 AND id = $2 AND state IN ('created', 'retry')
         RETURNING ${JOB_COLUMNS}`,
        [name, id],
      );
      return rows[0];
    },

    /** Marks a running job as asked to cancel (its handler is aborted through the job event). */
    async requestCancel(db: Queryable, name: string, id: string): Promise<JobRow | undefined> {
      const { rows } = await db.query<JobRow>(
        `UPDATE ${job} SET data = jsonb_set(data, '{cancelRequested}', 'true')
         WHERE name = $1 AND id = $2 AND state = 'active'
         RETURNING ${JOB_COLUMNS}`,
        [name, id],
      );
      return rows[0];
    },

    /**
     * Runs a failed or cancelled job again: one more attempt, now (or at its start time if that is
     * later), with the cancel request cleared.
     */
    async retry(db: Queryable, name: string, id: string): Promise<JobRow | undefined> {
      const { rows } = await db.query<JobRow>(
        `UPDATE ${job}
         SET state = CASE WHEN state = 'failed' THEN 'retry'::${qualified(bossSchema, "job_state")} ELSE 'created'::${qualified(bossSchema, "job_state")} END,
             retry_limit = GREATEST(retry_limit, retry_count + CASE WHEN started_on IS NULL THEN 0 ELSE 1 END),
             completed_on = NULL,
             start_after = GREATEST(start_after, now()),
             data = data - 'cancelRequested'
         WHERE name = $1 AND id = $2 AND state IN ('failed', 'cancelled')
         RETURNING ${JOB_COLUMNS}`,
        [name, id],
      );
      return rows[0];
    },
  };
}

export type JobQueries = ReturnType<typeof jobQueries>;
