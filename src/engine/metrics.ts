/**
 * Metrics snapshots: per queue and job type, the live counts (exact now) with the activity over a
 * window (the activity counters). GetMetrics answers one; WatchMetrics' sampler
 * takes one per tick for every stream.
 */
import { type Activity, type ActivityReader, combine } from "./activity.js";
import type { QueueControl } from "./queue-control.js";
import type { Counts, QueueStatsReader } from "./queue-stats.js";

/** One job type's metrics. */
export interface TypeMetrics {
  type: string;
  live: Counts;
  activity: Activity;
}

/** One queue's metrics (its job types summed). */
export interface QueueMetricsView {
  queue: string;
  paused: boolean;
  live: Counts;
  activity: Activity;
  types: TypeMetrics[];
}

/** A snapshot of every queue's metrics. */
export interface MetricsView {
  capturedAt: Date;
  windowSeconds: number;
  queues: QueueMetricsView[];
}

export interface MetricsDeps {
  stats: QueueStatsReader;
  activity: ActivityReader;
  control: QueueControl;
}

/** Takes metrics snapshots. */
export function createMetrics(deps: MetricsDeps) {
  return {
    async snapshot(windowSeconds: number): Promise<MetricsView> {
      const live = await deps.stats.all(windowSeconds);
      const capturedAt = live[0]?.capturedAt ?? new Date();
      const activity = await deps.activity.byType(windowSeconds, capturedAt);
      return {
        capturedAt,
        windowSeconds,
        queues: live.map((q) => {
          const types = q.byType.map((t) => ({ type: t.type, live: t, activity: activity.get(t.type)! }));
          return {
            queue: q.queue,
            paused: deps.control.paused(q.queue) !== undefined,
            live: q,
            activity: combine(types.map((t) => t.activity)),
            types,
          };
        }),
      };
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
