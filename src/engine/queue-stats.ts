/**
 * Queue statistics, exact at the moment of the call and cheap under load. A read sums the counts the
 * triggers keep (O(queues x buckets), not O(jobs): see queries/stats-queries.ts). Concurrent callers
 * share reads, but a caller only ever gets counts from a read that started after its call (a read
 * already under way is not joined: the next one is, and it starts as soon as the current one ends).
 * So a count taken right after an add, a start or a completion always includes it, and at most one
 * read per window runs at a time per replica.
 */
import type { Pool } from "../db/pool.js";
import { coalescing } from "./coalesce.js";
import type { JobRegistry, QueueDefinition } from "./registry.js";
import type { CountsRow, StatsQueries } from "./store/stats-queries.js";

/** Counts of one job type (or summed over a queue). */
export interface Counts {
  queued: number;
  delayed: number;
  active: number;
  retrying: number;
  /** Waiting for their parents. */
  waiting: number;
  deadLettered: number;
  /** When the oldest ready job became ready (undefined: none is waiting). */
  oldestReadySince?: Date;
  completed: number;
  failed: number;
  cancelled: number;
}

/** A queue's statistics. */
export interface QueueStatistics extends Counts {
  queue: string;
  capturedAt: Date;
  windowSeconds: number;
  byType: (Counts & { type: string })[];
}

const zero = (): Counts => ({ queued: 0, delayed: 0, active: 0, retrying: 0, waiting: 0, deadLettered: 0, completed: 0, failed: 0, cancelled: 0 });

function add(into: Counts, c: Counts): void {
  into.queued += c.queued;
  into.delayed += c.delayed;
  into.active += c.active;
  into.retrying += c.retrying;
  into.waiting += c.waiting;
  into.deadLettered += c.deadLettered;
  into.completed += c.completed;
  into.failed += c.failed;
  into.cancelled += c.cancelled;
  if (c.oldestReadySince && (!into.oldestReadySince || c.oldestReadySince < into.oldestReadySince)) into.oldestReadySince = c.oldestReadySince;
}

export interface QueueStatsDeps {
  pool: Pool;
  registry: JobRegistry;
  queries: StatsQueries;
}

/** The statistics reader of a replica. */
export function createQueueStats(deps: QueueStatsDeps) {
  const { registry, queries, pool } = deps;
  const byWindow = new Map<number, () => Promise<{ rows: CountsRow[]; capturedAt: Date }>>();
  const read = (windowSeconds: number) => {
    let reader = byWindow.get(windowSeconds);
    if (!reader) {
      reader = coalescing(() => queries.counts(pool, registry.bossQueues, windowSeconds));
      if (byWindow.size < 32) byWindow.set(windowSeconds, reader);
    }
    return reader();
  };

  /** Statistics of every queue, current counts exact, terminal counts over `windowSeconds`. */
  async function all(windowSeconds: number): Promise<QueueStatistics[]> {
    const { rows, capturedAt } = await read(windowSeconds);
    const liveBy = new Map<string, CountsRow>(rows.map((r) => [r.name, r]));
    return registry.queues.map((queue: QueueDefinition) => {
      const total = zero();
      const byType = registry.typesOf(queue.name).map((t) => {
        const l = liveBy.get(t.bossQueue);
        const c: Counts & { type: string } = {
          type: t.type,
          queued: l?.queued ?? 0,
          delayed: l?.delayed ?? 0,
          active: l?.active ?? 0,
          retrying: l?.retrying ?? 0,
          waiting: l?.waiting ?? 0,
          deadLettered: liveBy.get(t.deadLetterBossQueue)?.queued ?? 0,
          oldestReadySince: l?.oldest_ready ?? undefined,
          completed: l?.completed ?? 0,
          failed: l?.failed ?? 0,
          cancelled: l?.cancelled ?? 0,
        };
        add(total, c);
        return c;
      });
      return { queue: queue.name, capturedAt, windowSeconds, ...total, byType };
    });
  }

  return { all };
}

export type QueueStatsReader = ReturnType<typeof createQueueStats>;
