/**
 * Watching jobs change: the engine side of WatchJob and WatchJobs, on the replica's event feed.
 *
 * - One job: read the job with its database snapshot, then follow its events from that snapshot on
 *   (the feed's direct reads): an event whose transaction is visible in the snapshot is already
 *   reflected in the job, every later one is delivered, as soon as it commits. So no change falls
 *   between the snapshot and the stream, whichever replica, the supervisor or an admin made it. The
 *   watch ends after the job's final event.
 * - Many jobs: every matching change, from now, or resumed after a cursor: a catch-up read of the log
 *   (a service principal's filtered by its jobs in SQL) joins the live feed without a gap or a repeat.
 *   A cursor older than the retention is OUT_OF_RANGE.
 */
import type { Pool } from "../db/pool.js";
import { OutOfRangeError } from "./errors.js";
import { type EventFeed, type FeedEvent, xminOf } from "./event-feed.js";
import type { JobReader } from "./job-reader.js";
import type { JobRegistry } from "./registry.js";
import type { EventPosition, EventQueries, EventRow } from "./store/event-queries.js";
import type { JobRecord, JobStateName } from "./store/job-record.js";
import type { Viewer } from "./viewer.js";

/** Events one catch-up read takes. */
export const CATCH_UP_BATCH = 500;

/** Compares log positions. */
export function comparePositions(a: EventPosition, b: EventPosition): number {
  const ax = BigInt(a.xid);
  const bx = BigInt(b.xid);
  if (ax !== bx) return ax < bx ? -1 : 1;
  return a.seq - b.seq;
}

/** A job in a final state (nothing more happens to it unless an admin retries or redrives it). */
export function isFinalRecord(r: JobRecord): boolean {
  return r.deadLetter || r.state === "completed" || r.state === "cancelled" || r.state === "failed";
}

/**
 * Whether `events[i]` ends a watch of its job: COMPLETED, CANCELLED, DEAD_LETTERED, PURGED, or FAILED
 * without a dead letter in the same transaction (its DEAD_LETTERED follows in the same batch).
 */
export function endsWatch(events: readonly FeedEvent[], i: number): boolean {
  const ev = events[i]!;
  const t = ev.row.type;
  if (t === "completed" || t === "cancelled" || t === "dead_lettered" || t === "purged") return true;
  return t === "failed" && !events.slice(i + 1).some((n) => n.row.type === "dead_lettered" && n.row.xid === ev.row.xid);
}

/** A watch of one job. */
export interface JobWatch {
  /** The job when the watch began, and a log position at or before its first undelivered event. */
  readonly record: JobRecord;
  readonly position: EventPosition;
  close(): void;
}

/** What a watch of many jobs follows. */
export interface ChangesFilter {
  /** pg-boss queues (the job types and their dead letter queues). */
  bossQueues: readonly string[];
  /** New states to deliver (empty: all). */
  states: ReadonlySet<JobStateName>;
}

/** A watch of many jobs: catch up first (when resumed after a cursor), then the live events. */
export interface ChangesWatch {
  /** The events between the cursor and where the live feed took over, in log order. */
  catchUp(signal: AbortSignal): AsyncGenerator<FeedEvent>;
  /** Whether a live event is new (after everything delivered so far); marks it delivered. */
  isNew(ev: FeedEvent): boolean;
  close(): void;
}

export interface JobWatchDeps {
  pool: Pool;
  registry: JobRegistry;
  feed: EventFeed;
  events: EventQueries;
  reader: JobReader;
  eventRetentionSeconds: number;
}

/** The watch use cases. */
export function createJobWatches(deps: JobWatchDeps) {
  const { pool, feed, events } = deps;
  return {
    /** Watches one job; `deliver` gets its events after the returned record, in commit order. */
    async watchJob(viewer: Viewer, id: string, deliver: (events: FeedEvent[]) => void): Promise<JobWatch> {
      const { record, snapshot } = await deps.reader.forWatch(viewer, id);
      const close = feed.watchJob({ jobId: id, snapshot, deliver });
      return { record, position: { xid: xminOf(snapshot).toString(), seq: 0 }, close };
    },

    /** Watches the changes `filter` selects that `viewer` may see, after `from` (unset: from now). */
    async watchChanges(viewer: Viewer, filter: ChangesFilter, from: EventPosition | undefined, deliver: (events: FeedEvent[]) => void): Promise<ChangesWatch> {
      if (from && (await events.expired(pool, from, deps.eventRetentionSeconds))) {
        throw new OutOfRangeError("the cursor is older than the event retention (EVENT_RETENTION_SECONDS); start again without a cursor");
      }
      const names = new Set(filter.bossQueues);
      const wants = (row: EventRow) => names.has(row.queue_name) && (filter.states.size === 0 || filter.states.has(row.state as JobStateName));
      const visible = (ev: FeedEvent) => viewer.admin || ev.record?.envelope.principal === viewer.name;
      const sub = await feed.subscribe({
        needsRecords: true,
        wants,
        deliver: (batch) => {
          const mine = batch.filter(visible);
          if (mine.length > 0) deliver(mine);
        },
      });
      let last: EventPosition = sub.position;
      return {
        async *catchUp(signal) {
          if (!from || comparePositions(from, sub.position) >= 0) return;
          let cursor = from;
          read: for (;;) {
            signal.throwIfAborted();
            const { events: rows, full } = await events.read(pool, cursor, CATCH_UP_BATCH, [...names], viewer.admin ? undefined : viewer.name);
            for (const ev of await feed.withRecords(rows)) {
              if (comparePositions(ev.position, sub.position) > 0) break read;
              cursor = ev.position;
              if (wants(ev.row) && visible(ev)) yield ev;
            }
            if (rows.length > 0) cursor = { xid: rows[rows.length - 1]!.xid, seq: Number(rows[rows.length - 1]!.seq) };
            if (!full) break;
          }
          if (comparePositions(cursor, last) > 0) last = cursor;
        },
        isNew(ev) {
          if (comparePositions(ev.position, last) <= 0) return false;
          last = ev.position;
          return true;
        },
        close: () => sub.unsubscribe(),
      };
    },
  };
}

export type JobWatches = ReturnType<typeof createJobWatches>;
