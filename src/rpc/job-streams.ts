/**
 * The JobService streams, fed by the replica's event feed.
 *
 * - WatchJob: a SNAPSHOT, then every change of the job, ending after its final event. Subscribing
 *   comes first and the snapshot is read with its database snapshot, so no change can fall between
 *   the two: an event already reflected in the snapshot is skipped, every later one is sent.
 * - WatchJobs: every matching change, from now or resumed after a cursor (a catch-up read of the
 *   log joins the live feed without a gap or a repeat); a cursor older than the retention is
 *   OUT_OF_RANGE.
 *
 * Both are bounded: streams per principal and in total, and a byte budget per stream.
 */
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { JobService } from "../../gen/jobs/v1/job_service_pb.js";
import type { Engine } from "../engine/engine.js";
import { type FieldViolation, OutOfRangeError, ValidationError } from "../engine/errors.js";
import { decodeCursor } from "../engine/event-cursor.js";
import type { FeedEvent } from "../engine/event-feed.js";
import type { JobRegistry } from "../engine/registry.js";
import type { EventPosition } from "../engine/store/event-queries.js";
import type { JobRecord } from "../engine/store/job-record.js";
import { transportKey } from "../server/context.js";
import type { StreamLimits } from "../server/stream-limits.js";
import { encodeEvent, snapshotEvent } from "./event-mapper.js";
import { bossStateOf } from "./job-mapper.js";
import { requireUuid, viewerOf } from "./job-service.js";
import { StreamQueue } from "./stream-queue.js";

export interface JobStreamDeps {
  engine: () => Engine;
  registry: JobRegistry;
  limits: StreamLimits;
  /** The byte budget of one stream's queue. */
  maxStreamBytes: number;
}

/** Compares log positions. */
export function comparePositions(a: EventPosition, b: EventPosition): number {
  const ax = BigInt(a.xid);
  const bx = BigInt(b.xid);
  if (ax !== bx) return ax < bx ? -1 : 1;
  return a.seq - b.seq;
}

/** Whether a transaction is visible in a `pg_current_snapshot()` text (`xmin:xmax:xip,...`). */
export function visibleIn(snapshot: string, xid: string): boolean {
  const [xmin, xmax, xip] = snapshot.split(":");
  const x = BigInt(xid);
  if (x < BigInt(xmin!)) return true;
  if (x >= BigInt(xmax!)) return false;
  return !(xip ?? "")
    .split(",")
    .filter(Boolean)
    .some((v) => BigInt(v) === x);
}

/** A job in a final state (nothing more will happen to it unless an admin retries or redrives it). */
function isFinal(r: JobRecord): boolean {
  return r.deadLetter || r.state === "completed" || r.state === "cancelled" || r.state === "failed";
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
      const e = engine();
      const lease = limits.open(viewer.name, ctx.signal);
      try {
        const queue = queueFor(ctx, deps.maxStreamBytes);
        const sub = await e.feed.subscribe({ needsRecords: true, wants: (row) => row.job_id === id, deliver: (events) => queue.push(events, bytesOf(events)) });
        lease.also(() => sub.unsubscribe());
        const { record, snapshot } = await e.reader.forWatch(viewer, id);
        yield { event: snapshotEvent(record, sub.position) };
        if (isFinal(record)) return;
        for await (const batch of queue) {
          const fresh = batch.filter((ev) => !visibleIn(snapshot, ev.row.xid));
          for (const [i, ev] of fresh.entries()) {
            yield { event: encodeEvent(ev, registry).message };
            const t = ev.row.type;
            const deadLetterFollows = t === "failed" && fresh.slice(i + 1).some((n) => n.row.type === "dead_lettered" && n.row.xid === ev.row.xid);
            if (t === "completed" || t === "cancelled" || t === "dead_lettered" || t === "purged" || (t === "failed" && !deadLetterFollows)) return;
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
      const states = new Set<string>();
      req.states.forEach((s, i) => {
        const state = bossStateOf(s);
        if (state) states.add(state);
        else violations.push({ field: `states[${i}]`, description: "must be a job state", reason: "INVALID_VALUE" });
      });
      const from = req.cursor ? decodeCursor(req.cursor) : undefined;
      if (violations.length > 0) throw new ValidationError(violations);
      const types = registry.types.filter((t) => (!queue || t.queue === queue.name) && (req.types.length === 0 || req.types.includes(t.type)));
      // A dead letter queue's only events are purges, which belong to the queue's feed too.
      const names = new Set(types.flatMap((t) => [t.bossQueue, t.deadLetterBossQueue]));
      const wants = (row: FeedEvent["row"]) => names.has(row.queue_name) && (states.size === 0 || states.has(row.state));
      const visible = (ev: FeedEvent) => viewer.admin || ev.record?.envelope.principal === viewer.name;

      const e = engine();
      if (from && (await e.events.expired(e.pool, from, e.eventRetentionSeconds))) {
        throw new OutOfRangeError("the cursor is older than the event retention (EVENT_RETENTION_SECONDS); start again without a cursor");
      }
      const lease = limits.open(viewer.name, ctx.signal);
      try {
        const out = queueFor(ctx, deps.maxStreamBytes);
        const sub = await e.feed.subscribe({
          needsRecords: true,
          wants,
          deliver: (events) => {
            const mine = events.filter(visible);
            if (mine.length > 0) out.push(mine, bytesOf(mine));
          },
        });
        lease.also(() => sub.unsubscribe());
        let last: EventPosition = sub.position;
        if (from && comparePositions(from, sub.position) < 0) {
          // Catch up from the cursor to where the live feed took over.
          let cursor = from;
          catchUp: for (;;) {
            ctx.signal.throwIfAborted();
            const { events: rows, full } = await e.events.read(e.pool, cursor, 500, [...names], viewer.admin ? undefined : viewer.name);
            const batch = await e.feed.withRecords(rows);
            for (const ev of batch) {
              if (comparePositions(ev.position, sub.position) > 0) break catchUp;
              cursor = ev.position;
              if (wants(ev.row) && visible(ev)) yield { event: encodeEvent(ev, registry).message };
            }
            if (rows.length > 0) cursor = { xid: rows[rows.length - 1]!.xid, seq: Number(rows[rows.length - 1]!.seq) };
            if (!full) break;
          }
          last = comparePositions(cursor, sub.position) > 0 ? cursor : sub.position;
        }
        for await (const batch of out) {
          for (const ev of batch) {
            if (comparePositions(ev.position, last) <= 0) continue;
            last = ev.position;
            yield { event: encodeEvent(ev, registry).message };
          }
        }
      } finally {
        lease.release();
      }
    },
  };
}
