/**
 * Progress of running attempts (`Job.progress`, and a PROGRESS event by the capture trigger):
 * coalesced per job, so that a worker reporting in a tight loop writes at most one row change per
 * interval. A report within the interval replaces the one waiting to be written and resolves when it
 * is; each write is fenced to the attempt (false: the attempt no longer runs).
 */
import type { Pool } from "../db/pool.js";
import type { Attempt, WorkQueries } from "./store/work-queries.js";

/** At most one progress write per job per this many milliseconds. */
export const PROGRESS_INTERVAL_MS = 250;
/** Longest progress message kept. */
export const MAX_PROGRESS_MESSAGE = 200;

export interface Progress {
  percent: number;
  message: string;
}

interface Pending {
  bossQueue: string;
  attempt: Attempt;
  progress: Progress;
  waiters: ((held: boolean) => void)[];
}

/** Creates the writer. */
export function createProgressWriter(deps: { pool: Pool; work: WorkQueries; intervalMs?: number }) {
  const interval = deps.intervalMs ?? PROGRESS_INTERVAL_MS;
  const lastWrite = new Map<string, number>();
  const pending = new Map<string, Pending>();

  async function write(bossQueue: string, attempt: Attempt, progress: Progress): Promise<boolean> {
    lastWrite.set(attempt.id, Date.now());
    const stored = { percent: progress.percent, message: progress.message.slice(0, MAX_PROGRESS_MESSAGE), updatedAt: new Date().toISOString() };
    const ids = await deps.work.progress(deps.pool, bossQueue, [{ ...attempt, progress: stored }]);
    return ids.includes(attempt.id);
  }

  function flush(id: string): void {
    const p = pending.get(id);
    if (!p) return;
    pending.delete(id);
    write(p.bossQueue, p.attempt, p.progress).then(
      (held) => {
        for (const w of p.waiters) w(held);
      },
      () => {
        for (const w of p.waiters) w(true); // not recorded this time; the next report will be
      },
    );
  }

  // Forget jobs that stopped reporting.
  const prune = setInterval(() => {
    const old = Date.now() - 10 * interval;
    for (const [id, at] of lastWrite) if (at < old && !pending.has(id)) lastWrite.delete(id);
  }, 10 * interval);
  prune.unref();

  return {
    /** Records `progress` for a running attempt; resolves with whether the attempt still ran when written. */
    report(bossQueue: string, attempt: Attempt, progress: Progress): Promise<boolean> {
      const waiting = pending.get(attempt.id);
      if (waiting) {
        waiting.progress = progress;
        waiting.attempt = attempt;
        return new Promise((resolve) => waiting.waiters.push(resolve));
      }
      const since = Date.now() - (lastWrite.get(attempt.id) ?? 0);
      if (since >= interval) return write(bossQueue, attempt, progress);
      return new Promise((resolve) => {
        pending.set(attempt.id, { bossQueue, attempt, progress, waiters: [resolve] });
        setTimeout(() => flush(attempt.id), interval - since);
      });
    },
    stop(): void {
      clearInterval(prune);
      for (const id of [...pending.keys()]) flush(id);
    },
  };
}

export type ProgressWriter = ReturnType<typeof createProgressWriter>;
