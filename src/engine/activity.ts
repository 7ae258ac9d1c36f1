/**
 * Job activity over a window, from the counters the event log's trigger keeps (migration 0018): per
 * job type, how many jobs were added, started, finished each way, and histograms of their waits and
 * run times. A read costs O(queues x minutes x bins) of the window, never O(events), so GetMetrics,
 * the WatchMetrics sampler and the alert evaluator stay cheap however busy the queues are.
 *
 * Counts are exact (the counters commit with the events they count). The window is rounded out to
 * whole minutes (whole hours for its part older than two hours). Percentiles are nearest-rank over
 * the histogram, read back as the bin's geometric middle: within {@link HISTOGRAM_RELATIVE_ERROR} of
 * the exact value.
 */
import type { Pool } from "../db/pool.js";
import type { ActivityQueries } from "./queries/activity-queries.js";
import type { JobRegistry } from "./registry.js";

/** Histogram bins per doubling of a duration (must match duration_bin in migration 0018). */
export const BINS_PER_DOUBLING = 16;
/** How far a percentile read from the histogram may be from the exact value, relatively. */
export const HISTOGRAM_RELATIVE_ERROR = 2 ** (1 / (2 * BINS_PER_DOUBLING)) - 1;

/** Durations counted per bin: `bins` sorted by bin, `count` their sum. */
export interface Histogram {
  count: number;
  bins: [bin: number, n: number][];
}

/** Activity of one job type (or a queue) over a window. */
export interface Activity {
  added: number;
  started: number;
  completed: number;
  failed: number;
  deadLettered: number;
  cancelled: number;
  retried: number;
  expired: number;
  /** From when a job could start to when it started. */
  wait: Histogram;
  /** How long an attempt ran. */
  run: Histogram;
}

/** The duration (ms) a bin stands for: its geometric middle; bin 0 (under a microsecond) is 0. */
export function binValueMs(bin: number): number {
  return bin <= 0 ? 0 : 2 ** ((bin - 0.5) / BINS_PER_DOUBLING) / 1000;
}

/** The bin of a duration (ms): duration_bin of migration 0018, for checks and tests. */
export function binOfMs(ms: number): number {
  const micros = ms * 1000;
  return micros < 1 ? 0 : 1 + Math.floor((BINS_PER_DOUBLING * Math.log(micros)) / Math.LN2);
}

/** The nearest-rank percentile (`p` in 0..100] of a histogram, in ms; undefined when it is empty. */
export function quantile(h: Histogram, p: number): number | undefined {
  if (h.count === 0) return undefined;
  const rank = Math.min(h.count, Math.max(1, Math.ceil((p / 100) * h.count)));
  let seen = 0;
  for (const [bin, n] of h.bins) {
    seen += n;
    if (seen >= rank) return binValueMs(bin);
  }
  return binValueMs(h.bins[h.bins.length - 1]![0]);
}

/** The largest duration of a histogram (its highest bin), in ms; undefined when it is empty. */
export const maxOf = (h: Histogram): number | undefined => (h.count === 0 ? undefined : binValueMs(h.bins[h.bins.length - 1]![0]));

/** Sums histograms. */
function mergeHistograms(hs: Histogram[]): Histogram {
  const bins = new Map<number, number>();
  for (const h of hs) for (const [bin, n] of h.bins) bins.set(bin, (bins.get(bin) ?? 0) + n);
  return { count: hs.reduce((n, h) => n + h.count, 0), bins: [...bins].sort((a, b) => a[0] - b[0]) };
}

const emptyActivity = (): Activity => ({
  added: 0,
  started: 0,
  completed: 0,
  failed: 0,
  deadLettered: 0,
  cancelled: 0,
  retried: 0,
  expired: 0,
  wait: { count: 0, bins: [] },
  run: { count: 0, bins: [] },
});

/** The counters' kinds that are plain counts, by the Activity field they fill. */
const COUNTS = {
  added: "added",
  started: "started",
  completed: "completed",
  failed: "failed",
  dead_lettered: "deadLettered",
  cancelled: "cancelled",
  retried: "retried",
  expired: "expired",
} as const satisfies Record<string, keyof Activity>;

/** Sums activities (a queue's from its job types'). */
export function combine(activities: Activity[]): Activity {
  const a = emptyActivity();
  for (const x of activities) for (const field of Object.values(COUNTS)) a[field] += x[field];
  a.wait = mergeHistograms(activities.map((x) => x.wait));
  a.run = mergeHistograms(activities.map((x) => x.run));
  return a;
}

export interface ActivityDeps {
  pool: Pool;
  registry: JobRegistry;
  queries: ActivityQueries;
}

/** The activity reader of a replica. */
export function createActivity(deps: ActivityDeps) {
  const { pool, registry, queries } = deps;
  return {
    /** Activity per job type over the `windowSeconds` before `end` (rounded out, see above). */
    async byType(windowSeconds: number, end: Date): Promise<Map<string, Activity>> {
      const since = new Date(end.getTime() - windowSeconds * 1000);
      const rows = await queries.since(
        pool,
        registry.types.map((t) => t.bossQueue),
        since,
      );
      const byQueue = new Map<string, Activity>();
      for (const r of rows) {
        let a = byQueue.get(r.queue_name);
        if (!a) {
          a = emptyActivity();
          byQueue.set(r.queue_name, a);
        }
        if (r.kind === "wait" || r.kind === "run") {
          a[r.kind].bins.push([r.bin, r.n]);
          a[r.kind].count += r.n;
        } else if (r.kind in COUNTS) {
          a[COUNTS[r.kind as keyof typeof COUNTS]] += r.n;
        }
      }
      for (const a of byQueue.values()) for (const h of [a.wait, a.run]) h.bins.sort((x, y) => x[0] - y[0]);
      return new Map(registry.types.map((t) => [t.type, byQueue.get(t.bossQueue) ?? emptyActivity()]));
    },
  };
}

export type ActivityReader = ReturnType<typeof createActivity>;
