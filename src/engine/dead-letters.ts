/**
 * Dead letters: the copies pg-boss makes of jobs that failed for good, listed oldest first and put
 * back on their source queue by redrive. A redriven job is a new job (new id) with the same envelope,
 * so it keeps `root_job_id`: its processor finds an effect that already happened (the sandbox ledger,
 * the provider's record of the idempotency key) instead of repeating it.
 */
import { inTransaction, type Pool, type Queryable } from "../db/pool.js";
import { NotFoundError } from "./errors.js";
import type { PageTokens } from "./page-token.js";
import type { JobRegistry, QueueDefinition } from "./registry.js";
import type { DeadLetterQueries } from "./store/dead-letter-queries.js";
import { type JobRecord, type JobRow, requireRecord } from "./store/job-record.js";
import { ownerFilter, type Viewer } from "./viewer.js";

interface Position {
  c: number;
  i: string;
}

/** Dead letters one purge statement deletes, so that no purge holds locks for long. */
export const PURGE_BATCH = 5000;

export interface DeadLetterDeps {
  pool: Pool;
  registry: JobRegistry;
  queries: DeadLetterQueries;
  pageTokens: PageTokens;
}

/** Dead letter listing and redrive. */
export function createDeadLetters(deps: DeadLetterDeps) {
  const { registry, queries, pageTokens } = deps;
  const dlqsOf = (queue: QueueDefinition) => registry.typesOf(queue.name).map((t) => t.deadLetterBossQueue);
  const toRecord = (row: JobRow): JobRecord => requireRecord(row, registry);

  /** Throws NOT_FOUND unless every id is a dead letter waiting in the queue's dead letter queues. */
  async function requireDeadLetters(tx: Queryable, queue: QueueDefinition, ids: string[]): Promise<void> {
    const found = new Set(await queries.existing(tx, dlqsOf(queue), ids));
    const missing = ids.filter((id) => !found.has(id));
    if (missing.length > 0)
      throw new NotFoundError(`not dead letters of queue ${queue.name}: ${missing.slice(0, 10).join(", ")}${missing.length > 10 ? ", ..." : ""}`);
  }

  return {
    /** One page of a queue's dead letters, oldest first. */
    async list(viewer: Viewer, queue: QueueDefinition, pageSize: number, pageToken?: string): Promise<{ records: JobRecord[]; nextPageToken: string }> {
      const scope = `dead-letters:${viewer.admin ? "*" : viewer.name}`;
      const filter = { queue: queue.name };
      const after = pageToken ? pageTokens.verify<Position>(scope, filter, pageToken) : undefined;
      const rows = await queries.list(deps.pool, dlqsOf(queue), ownerFilter(viewer), after ? { createdMicros: after.c, id: after.i } : undefined, pageSize);
      const page = rows.slice(0, pageSize);
      const last = page[page.length - 1];
      const nextPageToken =
        rows.length > pageSize && last ? pageTokens.sign(scope, filter, { c: Number(last.created_micros), i: last.id } satisfies Position) : "";
      return { records: page.map(toRecord), nextPageToken };
    },

    /**
     * Discards dead letters for good: the listed ids (all must be waiting in the queue's dead letter
     * queues, else NOT_FOUND and nothing goes), or those dead-lettered before `before`, in batches.
     */
    async purge(queue: QueueDefinition, ids: string[] | undefined, before: Date | undefined): Promise<number> {
      const dlqs = dlqsOf(queue);
      if (ids && ids.length > 0) {
        return inTransaction(deps.pool, async (tx) => {
          await requireDeadLetters(tx, queue, ids);
          return queries.purge(tx, dlqs, ids, undefined, ids.length);
        });
      }
      // A large backlog goes in batches, each its own short transaction.
      let total = 0;
      for (;;) {
        const n = await inTransaction(deps.pool, (tx) => queries.purge(tx, dlqs, undefined, before, PURGE_BATCH));
        total += n;
        if (n < PURGE_BATCH) return total;
      }
    },

    /** Redrives the listed dead letters (all must be waiting in the queue's dead letter queues), or up to `limit` of them. */
    async redrive(queue: QueueDefinition, ids: string[] | undefined, limit: number): Promise<JobRecord[]> {
      const dlqs = dlqsOf(queue);
      const rows = await inTransaction(deps.pool, async (tx) => {
        if (ids && ids.length > 0) {
          await requireDeadLetters(tx, queue, ids);
          return queries.redrive(tx, dlqs, ids, ids.length);
        }
        return queries.redrive(tx, dlqs, undefined, limit);
      });
      return rows.map(toRecord);
    },
  };
}

export type DeadLetters = ReturnType<typeof createDeadLetters>;
