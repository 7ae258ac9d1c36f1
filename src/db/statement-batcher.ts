/**
 * Batching of concurrent statements: calls made while a batch runs gather into the next, so that a
 * hundred workers inserting a row each cost a few multi-row statements, not a hundred commits.
 *
 * A call joins the batch that is gathering; a batch starts as soon as fewer than `concurrency` run
 * (at once when idle: no added latency at light load), with at most `maxBatch` calls. Every caller
 * gets its own result, after its batch's statement; a batch that fails fails all its callers.
 */

export interface BatcherOptions<I, O> {
  /** Runs one batch; returns one result per item, in order. */
  run(items: I[]): Promise<O[]>;
  /** Most items in one batch. */
  maxBatch: number;
  /** Batches running at once (default 1). */
  concurrency?: number;
}

interface Waiting<I, O> {
  item: I;
  resolve(result: O): void;
  reject(err: unknown): void;
}

/** Returns a function that adds one item and resolves with its result once its batch ran. */
export function createBatcher<I, O>(options: BatcherOptions<I, O>): (item: I) => Promise<O> {
  const waiting: Waiting<I, O>[] = [];
  const concurrency = options.concurrency ?? 1;
  let running = 0;
  let scheduled = false;

  async function runBatch(batch: Waiting<I, O>[]): Promise<void> {
    try {
      const results = await options.run(batch.map((w) => w.item));
      for (const [i, w] of batch.entries()) w.resolve(results[i]!);
    } catch (err) {
      for (const w of batch) w.reject(err);
    }
  }

  function pump(): void {
    while (running < concurrency && waiting.length > 0) {
      const batch = waiting.splice(0, options.maxBatch);
      running++;
      void runBatch(batch).finally(() => {
        running--;
        pump();
      });
    }
  }

  return (item) =>
    new Promise<O>((resolve, reject) => {
      waiting.push({ item, resolve, reject });
      // Calls of the same tick share the batch that starts after them.
      if (!scheduled) {
        scheduled = true;
        queueMicrotask(() => {
          scheduled = false;
          pump();
        });
      }
    });
}
