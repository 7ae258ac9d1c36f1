/**
 * The completer: records how attempts ended, fenced to each attempt (a worker that lost its lease
 * changes nothing, and cannot settle the next attempt). Completions of concurrent attempts share one
 * statement per pg-boss queue: while one is written, the next gathers. A write that fails is tried
 * again a few times; after that the attempt stays active, its lease lapses, and the supervisor retries
 * it (money is keyed by business key, so a repeat changes nothing).
 */
import type { Pool } from "../../db/pool.js";
import { createBatcher } from "../../db/statement-batcher.js";
import type { Logger } from "../../logger.js";
import type { Attempt, WorkQueries } from "../store/work-queries.js";
import type { StoredFailure } from "./outcomes.js";

/** Most completions one statement writes. */
export const COMPLETION_BATCH_MAX = 500;
/** Tries of a write before the completer gives up on it (the pause before each: 200 ms x try). */
export const WRITE_TRIES = 5;

/** Records attempts' ends. */
export interface Completer {
  /** Completes an attempt with its result (batched). Resolves once written (or given up on). */
  complete(bossQueue: string, attempt: Attempt, result: object): Promise<void>;
  /** Fails an attempt: retried by the policy, or failed for good and dead-lettered (`permanent`: no retry). */
  fail(bossQueue: string, attempt: Attempt, failure: StoredFailure, permanent: boolean): Promise<void>;
  /** Ends an attempt that stopped on a cancel request: the job is cancelled. */
  cancel(bossQueue: string, attempt: Attempt, failure: StoredFailure): Promise<void>;
  /** Resolves once every write handed to it so far has ended. */
  settled(): Promise<void>;
}

export interface CompleterOptions {
  pool: Pool;
  work: WorkQueries;
  logger: Logger;
}

/** Creates a completer. */
export function createCompleter(options: CompleterOptions): Completer {
  const { pool, work, logger } = options;
  const pending = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => {});
    return p;
  };

  async function withRetries(what: string, write: () => Promise<unknown>, context: Record<string, unknown>): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        await write();
        return;
      } catch (err) {
        if (tries >= WRITE_TRIES) {
          logger.error({ err, ...context }, `could not record ${what}; the lease will lapse and the job will be retried`);
          return;
        }
        await new Promise((r) => setTimeout(r, 200 * tries));
      }
    }
  }

  const completions = new Map<string, (item: Attempt & { output: object }) => Promise<void>>();
  const completionsOf = (bossQueue: string) => {
    let add = completions.get(bossQueue);
    if (!add) {
      add = createBatcher({
        maxBatch: COMPLETION_BATCH_MAX,
        run: async (done: (Attempt & { output: object })[]) => {
          await withRetries("completions", () => work.complete(pool, bossQueue, done), { jobs: done.length });
          return done.map(() => undefined);
        },
      });
      completions.set(bossQueue, add);
    }
    return add;
  };

  return {
    complete: (bossQueue, attempt, result) => track(completionsOf(bossQueue)({ id: attempt.id, retryCount: attempt.retryCount, output: result })),
    fail: (bossQueue, attempt, failure, permanent) =>
      track(withRetries("a failure", () => work.fail(pool, bossQueue, attempt, failure, permanent), { jobId: attempt.id })),
    cancel: (bossQueue, attempt, failure) => track(withRetries("a cancellation", () => work.cancel(pool, bossQueue, attempt, failure), { jobId: attempt.id })),
    async settled() {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },
  };
}
