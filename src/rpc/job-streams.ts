/**
 * The JobService streams, fed by the replica's event feed.
 *
 * - WatchJob: a SNAPSHOT, then every change of the job as it commits, ending after its final event
 *   (the engine follows the job from the snapshot's own database snapshot, so no change falls between
 *   the two and none is sent twice).
 * - WatchJobs: every matching change, from now or resumed after a cursor (a catch-up read of the
 *   log joins the live feed without a gap or a repeat); a cursor older than the retention is
 *   OUT_OF_RANGE.
 *
 * Both are bounded: streams per principal and in total, and a byte budget per stream.
 */
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { JobService } from "../../gen/jobs/v1/job_service_pb.js";
import type { EngineApi, FeedEvent, JobRegistry, JobStateName } from "../engine/index.js";
import { decodeCursor, endsWatch, type FieldViolation, isFinalRecord, ValidationError } from "../engine/index.js";
import { transportKey } from "./call-context.js";
import { encodeEvent, snapshotEvent } from "./event-mapper.js";
import { stateNameOf } from "./job-mapper.js";
import { requireUuid, viewerOf } from "./request-fields.js";
import type { StreamLimits } from "./stream-limits.js";
import { StreamQueue } from "./stream-queue.js";

export interface JobStreamDeps {
  engine: () => EngineApi;
  registry: JobRegistry;
  limits: StreamLimits;
  /** The byte budget of one stream's queue. */
  maxStreamBytes: number;
}

const queueFor = (ctx: HandlerContext, maxBytes: number) =>
  new StreamQueue<FeedEvent[]>({ maxBytes, signal: ctx.signal, onOverflow: () => setTimeout(() => ctx.values.get(transportKey)?.cut(), 2000).unref() });

/** The JobService streaming methods. */
export function jobStreams(deps: JobStreamDeps): Pick<ServiceImpl<typeof JobService>, "watchJob" | "watchJobs"> {
  const { engine, registry, limits } = deps;
  const bytesOf = (events: FeedEvent[]) => events.reduce((n, e) => n + encodeEvent(e, registry).bytes, 0);

  return {
    async *watchJob(req, ctx) {
      const viewer = viewerOf(ctx);
      const id = requireUuid(req.id);
      const lease = limits.open(viewer.name, ctx.signal);
      try {
        const queue = queueFor(ctx, deps.maxStreamBytes);
        const watch = await engine().jobs.watchJob(viewer, id, (events) => queue.push(events, bytesOf(events)));
        lease.also(() => watch.close());
        yield { event: snapshotEvent(watch.record, watch.position) };
        if (isFinalRecord(watch.record)) return;
        for await (const batch of queue) {
          for (const [i, ev] of batch.entries()) {
            yield { event: encodeEvent(ev, registry).message };
            if (endsWatch(batch, i)) return;
          }
        }
      } finally {
        lease.release();
      }
    },

    async *watchJobs(req, ctx) {
      const viewer = viewerOf(ctx);
      const violations: FieldViolation[] = [];
      const queue = req.queue ? registry.queue(req.queue) : undefined;
      if (req.queue && !queue) violations.push({ field: "queue", description: "is not a queue", reason: "UNKNOWN_QUEUE" });
      req.types.forEach((t, i) => {
        const type = registry.type(t);
        if (!type) violations.push({ field: `types[${i}]`, description: "is not a registered job type", reason: "UNKNOWN_JOB_TYPE" });
        else if (queue && type.queue !== queue.name)
          violations.push({ field: `types[${i}]`, description: `does not belong to queue ${queue.name}`, reason: "INVALID_VALUE" });
      });
      const states = new Set<JobStateName>();
      req.states.forEach((s, i) => {
        const state = stateNameOf(s);
        if (state) states.add(state);
        else violations.push({ field: `states[${i}]`, description: "must be a job state", reason: "INVALID_VALUE" });
      });
      const from = req.cursor ? decodeCursor(req.cursor) : undefined;
      if (violations.length > 0) throw new ValidationError(violations);
      const types = registry.types.filter((t) => (!queue || t.queue === queue.name) && (req.types.length === 0 || req.types.includes(t.type)));
      // A dead letter queue's only events are purges, which belong to the queue's feed too.
      const bossQueues = types.flatMap((t) => [t.bossQueue, t.deadLetterBossQueue]);
      const out = queueFor(ctx, deps.maxStreamBytes);
      const lease = limits.open(viewer.name, ctx.signal);
      try {
        const watch = await engine().jobs.watchChanges(viewer, { bossQueues, states }, from, (events) => out.push(events, bytesOf(events)));
        lease.also(() => watch.close());
        for await (const ev of watch.catchUp(ctx.signal)) yield { event: encodeEvent(ev, registry).message };
        for await (const batch of out) {
          for (const ev of batch) if (watch.isNew(ev)) yield { event: encodeEvent(ev, registry).message };
        }
      } finally {
        lease.release();
      }
    },
  };
}
