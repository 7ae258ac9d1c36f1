/**
 * Admin commands on one job: retry and cancel, each in one transaction on the locked row, with
 * exactly the state rules of the contract.
 *
 * - Retry: a FAILED or CANCELLED job runs again (one more attempt, same root_job_id). Refused for
 *   any other state, and for a failed job whose failure already went on in its line (it has a dead
 *   letter copy, or that copy was redriven): redrive the copy instead, so one failure cannot run twice.
 * - Cancel: CREATED or RETRY is cancelled at once; ACTIVE gets `cancelRequested`, which aborts its
 *   handler wherever it runs (the processor then decides: cancelled before its side effect, or
 *   completed after it); CANCELLED is left as it is; COMPLETED and FAILED are refused.
 */
import { inTransaction, type Pool } from "../db/pool.js";
import { FailedPreconditionError, InternalError, NotFoundError } from "./errors.js";
import type { JobReader } from "./job-reader.js";
import type { JobRegistry } from "./registry.js";
import type { JobQueries } from "./store/job-queries.js";
import { type JobRecord, type JobRow, requireRecord } from "./store/job-record.js";

export interface JobCommandDeps {
  pool: Pool;
  registry: JobRegistry;
  jobs: JobQueries;
  reader: JobReader;
}

const upper = (s: string) => s.toUpperCase();

/** The job commands. */
export function createJobCommands(deps: JobCommandDeps) {
  const { registry, jobs } = deps;
  const toRecord = (row: JobRow): JobRecord => requireRecord(row, registry);

  return {
    async retry(id: string): Promise<JobRecord> {
      const record = await inTransaction(deps.pool, async (tx) => {
        const row = await jobs.lockById(tx, id, registry.bossQueues);
        if (!row) throw new NotFoundError(`job ${id} not found`);
        const job = toRecord(row);
        if (job.deadLetter) throw new FailedPreconditionError(`job ${id} is a dead letter; put it back with RedriveDeadLetters`);
        if (job.state !== "failed" && job.state !== "cancelled") {
          throw new FailedPreconditionError(`only FAILED or CANCELLED jobs can be retried; job ${id} is ${upper(job.state)}`);
        }
        if (job.state === "failed") {
          const later = await jobs.laterInLine(tx, row.source_root_id ?? row.id, row.id, row.completed_on ?? row.created_on);
          const copy = later.find((j) => registry.byBossQueue(j.name)?.deadLetter);
          if (copy) throw new FailedPreconditionError(`job ${id} has a dead letter copy ${copy.id}: redrive ${copy.id} (RedriveDeadLetters) instead`);
          if (later[0]) throw new FailedPreconditionError(`job ${id}'s dead letter copy was already redriven as job ${later[0].id}`);
        }
        const updated = await jobs.retry(tx, row.name, row.id);
        if (!updated) throw new InternalError(`job ${id} changed while locked`);
        return toRecord(updated);
      });
      return record;
    },

    async cancel(id: string): Promise<JobRecord> {
      const record = await inTransaction(deps.pool, async (tx) => {
        const row = await jobs.lockById(tx, id, registry.bossQueues);
        if (!row) throw new NotFoundError(`job ${id} not found`);
        const job = toRecord(row);
        if (job.deadLetter) throw new FailedPreconditionError(`job ${id} is a dead letter; it is not waiting to run`);
        switch (job.state) {
          case "created":
          case "retry":
          case "waiting":
            return toRecord((await jobs.cancelWaiting(tx, row.name, row.id)) ?? row);
          case "active":
            if (job.envelope.cancelRequested) return job;
            return toRecord((await jobs.requestCancel(tx, row.name, row.id)) ?? row);
          case "cancelled":
            return job;
          default:
            throw new FailedPreconditionError(`job ${id} is ${upper(job.state)}; only waiting or running jobs can be cancelled`);
        }
      });
      const [withCopy] = await deps.reader.withDeadLetterIds(deps.pool, [record]);
      return withCopy!;
    },
  };
}

export type JobCommands = ReturnType<typeof createJobCommands>;
