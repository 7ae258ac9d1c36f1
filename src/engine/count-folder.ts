/**
 * The job counts' folder: every second, one replica (the fold takes a transaction-level advisory
 * lock; the others skip) moves the deltas the triggers appended into the job counts and the activity
 * counters, so that a stats or metrics read sums at most about a second of deltas.
 */
import type { Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import type { StatsQueries } from "./store/stats-queries.js";

/** How often the deltas are folded. */
export const COUNT_FOLD_INTERVAL_MS = 1000;

/** A running folder. */
export interface CountFolder {
  /** Folds now (tests). */
  foldNow(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts the folding loop. */
export function startCountFolder(options: { pool: Pool; queries: StatsQueries; logger: Logger; intervalMs?: number }): CountFolder {
  let running: Promise<number> | undefined;
  const foldNow = () => {
    running ??= options.queries.fold(options.pool).finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => {
    foldNow().catch((err: Error) => options.logger.warn({ err: err.message }, "could not fold job counts"));
  }, options.intervalMs ?? COUNT_FOLD_INTERVAL_MS);
  timer.unref();
  return {
    foldNow,
    async stop() {
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
