/**
 * Metrics snapshots as protobuf messages.
 */
import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema, durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type LatencySummary, LatencySummarySchema, type MetricsSnapshot, MetricsSnapshotSchema } from "../../gen/jobs/v1/monitoring_service_pb.js";
import type { Counts, MetricsView } from "../engine/index.js";
import { type Activity, type Histogram, maxOf, quantile } from "../engine/index.js";

/** A Duration of `v` milliseconds, to the microsecond (whole nanoseconds, as protobuf requires). */
export const ms = (v: number | undefined): Duration => {
  const micros = Math.round((v ?? 0) * 1000);
  return create(DurationSchema, { seconds: BigInt(Math.floor(micros / 1_000_000)), nanos: (micros % 1_000_000) * 1000 });
};

/** A distribution of durations (nearest-rank percentiles of the histogram). */
export function toLatency(h: Histogram): LatencySummary {
  return create(LatencySummarySchema, {
    count: BigInt(h.count),
    p50: ms(quantile(h, 50)),
    p90: ms(quantile(h, 90)),
    p95: ms(quantile(h, 95)),
    p99: ms(quantile(h, 99)),
    max: ms(maxOf(h)),
  });
}

function common(live: Counts, a: Activity, windowSeconds: number, at: Date) {
  return {
    depth: BigInt(live.queued),
    active: BigInt(live.active),
    added: BigInt(a.added),
    started: BigInt(a.started),
    completed: BigInt(a.completed),
    failed: BigInt(a.failed),
    deadLettered: BigInt(a.deadLettered),
    retried: BigInt(a.retried),
    completedPerSecond: a.completed / windowSeconds,
    failedPerSecond: a.failed / windowSeconds,
    enqueueToStart: toLatency(a.wait),
    runTime: toLatency(a.run),
    _oldest: live.oldestReadySince ? Math.max(0, at.getTime() - live.oldestReadySince.getTime()) : 0,
  };
}

/** A metrics snapshot, optionally of one queue. */
export function toMetricsSnapshot(view: MetricsView, queue?: string): MetricsSnapshot {
  return create(MetricsSnapshotSchema, {
    capturedAt: timestampFromDate(view.capturedAt),
    window: durationFromMs(view.windowSeconds * 1000),
    queues: view.queues
      .filter((q) => !queue || q.queue === queue)
      .map((q) => {
        const { _oldest, ...c } = common(q.live, q.activity, view.windowSeconds, view.capturedAt);
        return {
          queue: q.queue,
          ...c,
          paused: q.paused,
          scheduled: BigInt(q.live.delayed + q.live.retrying),
          oldestQueuedAge: durationFromMs(_oldest),
          jobTypes: q.types.map((t) => {
            const { _oldest: _, ...tc } = common(t.live, t.activity, view.windowSeconds, view.capturedAt);
            return { type: t.type, ...tc };
          }),
        };
      }),
  });
}
