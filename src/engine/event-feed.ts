/**
 * The event feed of a replica: one reader of the job event log, shared by every stream. It reads
 * whenever the listener says events were committed (and every second), fetches the jobs the
 * subscribers want, and hands each subscriber its events. Nothing is lost when the listener drops,
 * or when many events collapse into one wake-up: the feed reads the log, not the notifications. It
 * reads only while somebody subscribes, on a connection of its own (so a stream's next event never
 * waits behind the workers' statements for one of the pool's). Two kinds of reader share each wake-up:
 *
 * - Watches of many jobs (WatchJobs) read from a position, in whole transactions and in log order,
 *   and only below the snapshot horizon (so a transaction that commits late is never skipped); soon
 *   again while committed events wait behind a running transaction.
 * - Watches of one job (WatchJob) read that job's committed events directly, without waiting for the
 *   horizon: a job's events are written under its row lock, so they are already in commit order by
 *   `seq`, and each watch knows what it has seen by the snapshot of its previous read.
 */
import type { Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import type { Listener } from "./listener.js";
import type { JobRegistry } from "./registry.js";
import type { EventPosition, EventQueries, EventRow } from "./store/event-queries.js";
import type { JobQueries } from "./store/job-queries.js";
import { failureFromOutput, type JobRecord, type JobStateName, recordFromRow } from "./store/job-record.js";

/** Most events one read takes (whole transactions; a larger one is read whole). */
export const FEED_BATCH = 1000;
/** A safety read while subscribed, in case a notification was lost. */
export const FEED_POLL_MS = 1000;

/** An event, with the job after the change when a subscriber needed it. */
export interface FeedEvent {
  readonly position: EventPosition;
  readonly row: EventRow;
  readonly record?: JobRecord;
  /** Cache for whoever serialises the event (shared by every stream that sends it). */
  encoded?: unknown;
}

/** A consumer of the feed. */
export interface FeedSubscriber {
  /** Whether this event matters (decided on the event alone, before the job is fetched). */
  wants(row: EventRow): boolean;
  /** Whether it needs the job record with its events. */
  readonly needsRecords: boolean;
  /** A batch of wanted events: whole transactions, in log order. */
  deliver(events: FeedEvent[]): void;
}

/** A watch of one job, fed by direct reads of its events. */
export interface JobSubscriber {
  readonly jobId: string;
  /** A `pg_current_snapshot()`: events visible in it were already delivered (or were in the job read with it). */
  snapshot: string;
  /** The job's new events, in commit order. */
  deliver(events: FeedEvent[]): void;
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

/** A snapshot's xmin: every transaction not visible in it has an xid at or above it. */
export const xminOf = (snapshot: string): bigint => BigInt(snapshot.slice(0, snapshot.indexOf(":")));

/** A subscription: events after `position` are delivered. */
export interface Subscription {
  readonly position: EventPosition;
  unsubscribe(): void;
}

export interface EventFeedOptions {
  /** The service's pool: catch-up reads (a resumed WatchJobs), in the caller's request. */
  pool: Pool;
  /** The feed's own connection (a pool of one): the live reads, which never wait behind work for one of `pool`'s. */
  livePool: Pool;
  registry: JobRegistry;
  events: EventQueries;
  jobs: JobQueries;
  listener: Listener;
  logger: Logger;
}

const terminal = new Set(["completed", "failed", "cancelled"]);

/** The job as it was right after an event: the current row with the event's state laid over it. */
export function recordAt(current: JobRecord, row: EventRow): JobRecord {
  const r: JobRecord = { ...current, state: row.state as JobStateName, retryCount: row.retry_count };
  if (row.type === "started") r.startedAt = row.occurred_at;
  if (terminal.has(row.type)) r.completedAt = row.occurred_at;
  // What the job did not have yet at this event (the row read now may be further on).
  const added = row.type === "created" || row.type === "waiting" || row.type === "released";
  if (added) Object.assign(r, { startedAt: undefined, lastError: undefined, deadLetterJobId: undefined });
  if (row.type === "redriven") r.startedAt = undefined;
  if (added || row.type === "redriven" || row.type === "started") Object.assign(r, { completedAt: undefined, result: undefined });
  if (row.type === "retry_scheduled" || row.type === "failed" || row.type === "expired")
    r.lastError = failureFromOutput(row.detail, row.retry_count + 1) ?? r.lastError;
  if (row.type === "dead_lettered") r.deadLetterJobId = (row.detail?.deadLetterJobId as string | undefined) ?? r.deadLetterJobId;
  if (row.type === "cancel_requested") r.envelope = { ...r.envelope, cancelRequested: true };
  return r;
}

/** Starts the feed (idle until the first subscriber). */
export function createEventFeed(options: EventFeedOptions) {
  const { pool, livePool, registry, events, jobs, listener, logger } = options;
  const subscribers = new Set<FeedSubscriber>();
  const jobWatchers = new Set<JobSubscriber>();
  let position: EventPosition | undefined;
  let activating: Promise<EventPosition> | undefined;
  let reading = false;
  let again = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let pendingDelay = 5;
  let stopped = false;

  async function recordsOf(ids: Set<string>): Promise<Map<string, JobRecord>> {
    if (ids.size === 0) return new Map();
    const found = await jobs.byIds(livePool, [...ids], registry.bossQueues);
    const records = new Map<string, JobRecord>();
    for (const r of found) {
      const record = recordFromRow(r, registry);
      if (record) records.set(r.id, record);
    }
    return records;
  }

  function enrich(rows: EventRow[]): Promise<Map<string, JobRecord>> {
    const ids = new Set<string>();
    for (const row of rows) for (const s of subscribers) if (s.needsRecords && s.wants(row)) ids.add(row.job_id);
    return recordsOf(ids);
  }

  const feedEvent = (row: EventRow, records: Map<string, JobRecord>): FeedEvent => {
    const current = records.get(row.job_id);
    return { position: { xid: row.xid, seq: Number(row.seq) }, row, record: current ? recordAt(current, row) : undefined };
  };

  /** One read for every watch of one job: the watched jobs' events since the oldest watch's snapshot, with the jobs. */
  async function readWatchedJobs(): Promise<void> {
    if (jobWatchers.size === 0 || stopped) return;
    const watchers = [...jobWatchers];
    let from = xminOf(watchers[0]!.snapshot);
    for (const w of watchers) if (xminOf(w.snapshot) < from) from = xminOf(w.snapshot);
    const { events: rows, snapshot } = await events.readJobs(livePool, [...new Set(watchers.map((w) => w.jobId))], from.toString());
    for (const w of watchers) {
      const mine = rows.filter((r) => r.job_id === w.jobId && !visibleIn(w.snapshot, r.xid));
      w.snapshot = snapshot;
      if (mine.length === 0 || !jobWatchers.has(w)) continue;
      w.deliver(
        mine.map(({ job, ...row }) => {
          const current = job ? recordFromRow(job, registry) : undefined;
          return { position: { xid: row.xid, seq: Number(row.seq) }, row, record: current ? recordAt(current, row) : undefined };
        }),
      );
    }
  }

  async function readOnce(): Promise<void> {
    await readWatchedJobs();
    for (;;) {
      if (!position || subscribers.size === 0 || stopped) return;
      const from = position;
      const { events: rows, pending, full } = await events.read(livePool, from, FEED_BATCH);
      const known = rows.filter((r) => registry.byBossQueue(r.queue_name));
      if (rows.length > 0) {
        const records = await enrich(known);
        const batch = known.map((row) => feedEvent(row, records));
        const last = rows[rows.length - 1]!;
        if (subscribers.size === 0) return; // went idle while reading: the next subscriber starts from "now"
        position = { xid: last.xid, seq: Number(last.seq) };
        for (const s of subscribers) {
          const wanted = batch.filter((e) => s.wants(e.row));
          if (wanted.length > 0) s.deliver(wanted);
        }
      }
      if (full) continue;
      if (pending) {
        // Committed events wait behind a transaction still running: look again soon.
        clearTimeout(retryTimer);
        retryTimer = setTimeout(wake, pendingDelay);
        pendingDelay = Math.min(pendingDelay * 2, 200);
      } else {
        pendingDelay = 5;
      }
      return;
    }
  }

  function wake(): void {
    if (stopped || (jobWatchers.size === 0 && (subscribers.size === 0 || !position))) return;
    if (reading) {
      again = true;
      return;
    }
    reading = true;
    void (async () => {
      try {
        do {
          again = false;
          await readOnce();
        } while (again);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "event feed read failed; retrying");
        clearTimeout(retryTimer);
        retryTimer = setTimeout(wake, 500);
      } finally {
        reading = false;
      }
    })();
  }

  const offEvents = listener.onEvents(wake);
  const offResync = listener.onResync(wake);
  const poll = setInterval(wake, FEED_POLL_MS);
  poll.unref();

  return {
    /** Subscribes; resolves with the position after which events are delivered. */
    async subscribe(subscriber: FeedSubscriber): Promise<Subscription> {
      if (!position) {
        activating ??= events.now(livePool).finally(() => (activating = undefined));
        const start = await activating;
        position ??= start;
      }
      subscribers.add(subscriber);
      const at = position;
      return {
        position: at,
        unsubscribe() {
          subscribers.delete(subscriber);
          // Idle: forget the position; the next subscriber starts from "now".
          if (subscribers.size === 0) position = undefined;
        },
      };
    },
    /**
     * Watches one job from `snapshot` on (the job was read in it): its later events are delivered as
     * they commit. Reads at once, for whatever committed since the snapshot.
     */
    watchJob(subscriber: JobSubscriber): () => void {
      jobWatchers.add(subscriber);
      wake();
      return () => jobWatchers.delete(subscriber);
    },
    /** Events read by a catch-up, with their jobs, as the feed would deliver them. */
    async withRecords(rows: EventRow[]): Promise<FeedEvent[]> {
      const known = rows.filter((r) => registry.byBossQueue(r.queue_name));
      const found = known.length > 0 ? await jobs.byIds(pool, [...new Set(known.map((r) => r.job_id))], registry.bossQueues) : [];
      const records = new Map(
        found.flatMap((r) => {
          const record = recordFromRow(r, registry);
          return record ? [[r.id, record] as const] : [];
        }),
      );
      return known.map((row) => feedEvent(row, records));
    },
    /** Reads now (tests, and after a subscriber's catch-up). */
    wake,
    /** Open watches: of many jobs and of one. */
    subscribers: () => subscribers.size + jobWatchers.size,
    stop() {
      stopped = true;
      offEvents();
      offResync();
      clearInterval(poll);
      clearTimeout(retryTimer);
    },
  };
}

export type EventFeed = ReturnType<typeof createEventFeed>;
