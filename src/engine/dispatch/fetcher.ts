/**
 * The fetcher: one loop per job type with a processor, claiming runnable jobs for the executor.
 *
 * A loop waits until its queue has a free slot, asks the gate how many jobs it may claim now (pause,
 * processing rate limits), claims that many through the store (pg-boss's `FOR UPDATE SKIP LOCKED`
 * fetch), and hands them to the executor; again at once while jobs keep coming, otherwise it sleeps
 * until its pg-boss queue gets a runnable job (a notification from the capture trigger, on any
 * replica), a resume wakes it, or its poll interval passes (delayed jobs and retries send no
 * notification).
 */
import type { Logger } from "../../logger.js";
import type { Listener } from "../listener.js";
import type { JobRegistry, RegisteredJobType } from "../registry.js";
import type { ClaimedJob } from "../store/work-queries.js";

/** Most jobs one claim takes. */
export const FETCH_BATCH_MAX = 100;

/** Decides, before a claim, how many jobs a type may claim now (pause, rate limits). */
export interface FetchGate {
  /**
   * How many of `wanted` jobs of `type` may be claimed now. With none allowed, the loop sleeps
   * `retryAfterMs` (at most its poll interval), or until woken (a resume wakes the queue's loops).
   */
  allow(type: RegisteredJobType, wanted: number): Promise<{ allowed: number; retryAfterMs?: number }> | { allowed: number; retryAfterMs?: number };
  /** Returns unused permits (a claim took fewer jobs than allowed). */
  giveBack?(type: RegisteredJobType, unused: number): void;
}

export interface FetcherOptions {
  registry: JobRegistry;
  /** The job types to fetch. */
  types: readonly RegisteredJobType[];
  /** Claims up to `max` jobs of a job type. */
  claim(type: RegisteredJobType, max: number): Promise<ClaimedJob[]>;
  /** Where claimed jobs go, and how much room there is. */
  executor: { free(queue: string): number; whenFree(queue: string): Promise<void>; run(type: RegisteredJobType, jobs: ClaimedJob[]): void };
  listener: Listener;
  gate?: FetchGate;
  pollIntervalMs: number;
  logger: Logger;
}

/** Running fetch loops. */
export interface Fetcher {
  /** Wakes the loops of a queue (or all), e.g. after a resume. */
  wake(queue?: string): void;
  /** Stops the loops; resolves once none is claiming. */
  stop(): Promise<void>;
}

/** Starts the fetch loops. */
export function startFetcher(options: FetcherOptions): Fetcher {
  const { executor, logger } = options;
  const wakers = new Map<string, () => void>();
  // Queues notified while their loop was busy: it claims again instead of sleeping.
  const dirty = new Set<string>();
  let stopping = false;
  let halt!: () => void;
  const halted = new Promise<void>((resolve) => (halt = resolve));

  function sleep(bossQueue: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakers.delete(bossQueue);
        resolve();
      }
      wakers.set(bossQueue, done);
    });
  }

  async function loop(type: RegisteredJobType): Promise<void> {
    while (!stopping) {
      try {
        await Promise.race([executor.whenFree(type.queue), halted]);
        if (stopping) return;
        const wanted = Math.min(executor.free(type.queue), FETCH_BATCH_MAX);
        if (wanted <= 0) continue;
        const decision = options.gate ? await options.gate.allow(type, wanted) : { allowed: wanted };
        if (decision.allowed <= 0) {
          await sleep(type.bossQueue, Math.min(options.pollIntervalMs, Math.max(10, decision.retryAfterMs ?? options.pollIntervalMs)));
          continue;
        }
        dirty.delete(type.bossQueue);
        const jobs = await options.claim(type, decision.allowed);
        if (decision.allowed > jobs.length) options.gate?.giveBack?.(type, decision.allowed - jobs.length);
        if (jobs.length > 0) executor.run(type, jobs);
        else if (!dirty.has(type.bossQueue) && !stopping) await sleep(type.bossQueue, options.pollIntervalMs);
      } catch (err) {
        logger.warn({ err: (err as Error).message, queue: type.bossQueue }, "fetch failed; retrying");
        if (!stopping) await sleep(type.bossQueue, options.pollIntervalMs);
      }
    }
  }

  const wakeQueue = (bossQueue: string) => {
    dirty.add(bossQueue);
    wakers.get(bossQueue)?.();
  };
  const wakeAll = () => {
    for (const t of options.types) wakeQueue(t.bossQueue);
  };
  const offWork = options.listener.onWork(wakeQueue);
  // Notifications sent while the listener was away were lost.
  const offResync = options.listener.onResync(wakeAll);
  const loops = options.types.map(loop);

  return {
    wake(queue) {
      if (!queue) return wakeAll();
      for (const t of options.registry.typesOf(queue)) wakeQueue(t.bossQueue);
    },
    async stop() {
      stopping = true;
      halt();
      offWork();
      offResync();
      for (const w of [...wakers.values()]) w();
      await Promise.all(loops);
    },
  };
}
