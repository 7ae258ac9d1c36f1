/**
 * Reading jobs: by id, and newest-first pages with signed keyset tokens. A service principal sees
 * only its own jobs; anyone else's job does not exist for it (NOT_FOUND, no existence leak).
 */
import type { Pool, Queryable } from "../db/pool.js";
import { createBatcher } from "../db/statement-batcher.js";
import { NotFoundError } from "./errors.js";
import type { PageTokens } from "./page-token.js";
import type { JobRegistry } from "./registry.js";
import type { DependencyQueries } from "./store/dependency-queries.js";
import type { JobQueries } from "./store/job-queries.js";
import { type JobRecord, type JobRow, type JobStateName, requireRecord } from "./store/job-record.js";
import { ownerFilter, type Viewer } from "./viewer.js";

/** Filters of ListJobs, resolved to names the registry knows. */
export interface ListFilter {
  /** pg-boss queues to search. */
  bossQueues: string[];
  states?: JobStateName[];
  idempotencyKey?: string;
  createdAfter?: Date;
  createdBefore?: Date;
  pageSize: number;
  pageToken?: string;
  /** What the token is bound to (the request's filters as given). */
  tokenScope: unknown;
}

/** A page of jobs. */
export interface JobPage {
  records: JobRecord[];
  nextPageToken: string;
}

interface Position {
  c: number;
  i: string;
}

export interface JobReaderDeps {
  pool: Pool;
  registry: JobRegistry;
  jobs: JobQueries;
  dependencies: DependencyQueries;
  pageTokens: PageTokens;
}

/** The job reader. */
export function createJobReader(deps: JobReaderDeps) {
  const { registry, jobs, pageTokens } = deps;

  const toRecord = (row: JobRow): JobRecord => requireRecord(row, registry);

  /** Fills `deadLetterJobId` of failed jobs that have a dead letter copy. */
  async function withDeadLetterIds(db: Queryable, records: JobRecord[]): Promise<JobRecord[]> {
    const failed = records.filter((r) => !r.deadLetter && r.state === "failed" && r.deadLetterQueue);
    if (failed.length === 0) return records;
    const copies = await jobs.deadLetterCopies(
      db,
      failed.map((r) => ({ id: r.id, root: r.sourceRootId ?? r.id, deadLetterQueue: r.deadLetterQueue! })),
    );
    return records.map((r) => (copies.has(r.id) ? { ...r, deadLetterJobId: copies.get(r.id) } : r));
  }

  const watchRead = createBatcher({
    maxBatch: 500,
    concurrency: 2,
    run: async (ids: string[]) => {
      const { rows, snapshot } = await jobs.byIdsWithSnapshot(deps.pool, [...new Set(ids)], registry.bossQueues);
      const records = new Map((await withDeadLetterIds(deps.pool, rows.map(toRecord))).map((r) => [r.id, r]));
      return ids.map((id) => ({ record: records.get(id), snapshot }));
    },
  });

  return {
    withDeadLetterIds,

    /** One job, if `viewer` may see it: its own, or a parent of one of its own. */
    async get(viewer: Viewer, id: string): Promise<JobRecord> {
      let [row] = await jobs.byIds(deps.pool, [id], registry.bossQueues, ownerFilter(viewer));
      if (!row && !viewer.admin && (await deps.dependencies.childOwnedBy(deps.pool, id, viewer.name))) {
        [row] = await jobs.byIds(deps.pool, [id], registry.bossQueues);
      }
      if (!row) throw new NotFoundError(`job ${id} not found`);
      const [record] = await withDeadLetterIds(deps.pool, [toRecord(row)]);
      return record!;
    },

    /**
     * One job for a watch, with the database snapshot it was read in: events whose transaction is
     * visible in that snapshot are already reflected in the job. Watches opened together share one
     * read (a thousand at once cost a few statements, not a thousand).
     */
    async forWatch(viewer: Viewer, id: string): Promise<{ record: JobRecord; snapshot: string }> {
      const { record, snapshot } = await watchRead(id);
      if (!record || (!viewer.admin && record.envelope.principal !== viewer.name)) throw new NotFoundError(`job ${id} not found`);
      return { record, snapshot };
    },

    /** One page of jobs, newest first. */
    async list(viewer: Viewer, filter: ListFilter): Promise<JobPage> {
      const scope = `jobs:${viewer.admin ? "*" : viewer.name}`;
      const after = filter.pageToken ? pageTokens.verify<Position>(scope, filter.tokenScope, filter.pageToken) : undefined;
      const rows = await jobs.list(deps.pool, {
        bossQueues: filter.bossQueues,
        deadLetterQueues: filter.bossQueues.filter((q) => registry.byBossQueue(q)?.deadLetter),
        principal: ownerFilter(viewer),
        states: filter.states,
        idempotencyKey: filter.idempotencyKey,
        createdAfter: filter.createdAfter,
        createdBefore: filter.createdBefore,
        after: after ? { createdMicros: after.c, id: after.i } : undefined,
        limit: filter.pageSize,
      });
      const page = rows.slice(0, filter.pageSize);
      const last = page[page.length - 1];
      const nextPageToken =
        rows.length > filter.pageSize && last
          ? pageTokens.sign(scope, filter.tokenScope, { c: Number(last.created_micros), i: last.id } satisfies Position)
          : "";
      return { records: await withDeadLetterIds(deps.pool, page.map(toRecord)), nextPageToken };
    },
  };
}

export type JobReader = ReturnType<typeof createJobReader>;
