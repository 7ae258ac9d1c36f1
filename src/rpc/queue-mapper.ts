/**
 * Queues and their statistics as protobuf messages.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type JobType, JobTypeSchema, type Queue, QueueSchema, type QueueStats, QueueStatsSchema } from "../../gen/jobs/v1/queue_service_pb.js";
import type { Counts, JobRegistry, PauseRow, QueueDefinition, QueueStatistics, RegisteredJobType } from "../engine/index.js";

const age = (since: Date | undefined, at: Date) => durationFromMs(since ? Math.max(0, at.getTime() - since.getTime()) : 0);

function counts(c: Counts, at: Date) {
  return {
    queued: BigInt(c.queued),
    delayed: BigInt(c.delayed),
    active: BigInt(c.active),
    retrying: BigInt(c.retrying),
    waiting: BigInt(c.waiting),
    deadLettered: BigInt(c.deadLettered),
    oldestQueuedAge: age(c.oldestReadySince, at),
    completed: BigInt(c.completed),
    failed: BigInt(c.failed),
    cancelled: BigInt(c.cancelled),
  };
}

/** A queue's statistics. */
export function toQueueStats(s: QueueStatistics): QueueStats {
  return create(QueueStatsSchema, {
    ...counts(s, s.capturedAt),
    window: durationFromMs(s.windowSeconds * 1000),
    capturedAt: timestampFromDate(s.capturedAt),
    jobTypes: s.byType.map((t) => ({ type: t.type, ...counts(t, s.capturedAt) })),
  });
}

/** A queue with its policy, pause and statistics. */
export function toQueue(
  q: QueueDefinition,
  registry: JobRegistry,
  concurrency: number,
  pause: PauseRow | undefined,
  stats: QueueStatistics | undefined,
): Queue {
  const p = q.policy;
  const types = registry.typesOf(q.name);
  return create(QueueSchema, {
    name: q.name,
    description: q.description,
    builtIn: q.builtIn === true,
    jobTypes: types.map((t) => t.type),
    paused: pause !== undefined,
    pausedAt: pause ? timestampFromDate(pause.paused_at) : undefined,
    pausedBy: pause?.paused_by ?? "",
    policy: {
      retryLimit: p.retryLimit,
      retryDelay: durationFromMs(p.retryDelaySeconds * 1000),
      retryBackoff: p.retryBackoff,
      expireIn: durationFromMs(p.expireInSeconds * 1000),
      deadLetterQueue: types.map((t) => t.deadLetterBossQueue).join(","),
      retryDelayMax: durationFromMs(p.retryDelayMaxSeconds * 1000),
      deadLetterRetention: durationFromMs(p.deadLetterRetentionSeconds * 1000),
      priority: p.priority,
      concurrency,
      maxRetryLimit: p.maxRetryLimit,
      maxExpireIn: durationFromMs(p.maxExpireInSeconds * 1000),
      keyConcurrency: p.keyConcurrency,
    },
    stats: stats ? toQueueStats(stats) : undefined,
  });
}

/** A job type: built-in ones without a schema (theirs is compiled in) and open to every producer. */
export function toJobType(t: RegisteredJobType): JobType {
  return create(JobTypeSchema, {
    name: t.type,
    queue: t.queue,
    payloadSchema: "kind" in t.payload ? (t.payload.schema as never) : undefined,
    producers: [...(t.producers ?? ["*"])],
    workers: [...(t.workers ?? [])],
    builtIn: t.builtIn === true,
    description: t.description ?? "",
    createTime: t.createdAt ? timestampFromDate(t.createdAt) : undefined,
    updateTime: t.updatedAt ? timestampFromDate(t.updatedAt) : undefined,
  });
}
