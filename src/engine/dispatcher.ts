/**
 * The workers of one replica, in three parts (dispatch/): the fetcher claims runnable jobs when its
 * queue has room (wake-ups, the pause and rate-limit gate), the executor runs them within each
 * queue's slots and keeps their leases, and the completer records how each attempt ended, fenced to
 * the attempt and batched. docs/engine.md, "Workers", has the whole picture.
 */
import type { Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import type { Instruments } from "../telemetry/instruments.js";
import { createClaim } from "./claims.js";
import { createCompleter } from "./dispatch/completer.js";
import { startExecutor } from "./dispatch/executor.js";
import { type FetchGate, startFetcher } from "./dispatch/fetcher.js";
import type { Listener } from "./listener.js";
import type { Processor } from "./processor.js";
import type { ProgressWriter } from "./progress.js";
import type { JobRegistry, RegisteredJobType } from "./registry.js";
import type { WorkQueries } from "./store/work-queries.js";

export type { FetchGate } from "./dispatch/fetcher.js";

export interface DispatcherOptions {
  pool: Pool;
  registry: JobRegistry;
  processors: ReadonlyMap<string, Processor<any>>;
  listener: Listener;
  work: WorkQueries;
  logger: Logger;
  /** Jobs of a queue one replica runs at once. */
  concurrency(queue: string): number;
  pollIntervalMs: number;
  gate?: FetchGate;
  heartbeatIntervalMs?: number;
  instruments?: Instruments;
  progress?: ProgressWriter;
}

/** The workers of one replica. */
export interface Dispatcher {
  /** Attempts running now. */
  running(): number;
  /** Attempts running now, per job type. */
  runningByType(): Map<RegisteredJobType, number>;
  /** Wakes the loops of a queue (or all), e.g. after a resume. */
  wake(queue?: string): void;
  /** Stops fetching, lets running jobs finish for up to `graceMs`, then aborts the rest. */
  stop(graceMs: number): Promise<void>;
}

/** Starts the workers. */
export function startDispatcher(options: DispatcherOptions): Dispatcher {
  const { pool, registry, work, logger } = options;
  const completer = createCompleter({ pool, work, logger });
  const executor = startExecutor({
    queues: registry.queues,
    processors: options.processors,
    concurrency: options.concurrency,
    completer,
    work,
    pool,
    listener: options.listener,
    logger,
    instruments: options.instruments,
    heartbeatIntervalMs: options.heartbeatIntervalMs,
    progress: options.progress,
  });
  const fetcher = startFetcher({
    registry,
    types: registry.types.filter((t) => options.processors.has(t.type)),
    claim: createClaim({ pool, registry, work }),
    executor,
    listener: options.listener,
    gate: options.gate,
    pollIntervalMs: options.pollIntervalMs,
    logger,
  });
  return {
    running: () => executor.held(),
    runningByType: () => executor.heldByType(),
    wake: (queue) => fetcher.wake(queue),
    async stop(graceMs) {
      await fetcher.stop();
      await executor.stop(graceMs);
    },
  };
}
