/**
 * Analytics: job activity rolled up per minute (and per hour) from the event log, and metrics over a
 * window read from those rollups plus the events not rolled up yet.
 *
 * A minute is rolled up only once it is final: every transaction that could still write an event into
 * it (events are stamped with their transaction's start) has ended. Each run recomputes the last few
 * minutes whole, so re-running rewrites and never double-counts, and events that committed late are
 * picked up by the next run. Durations are kept whole, so percentiles over any window are exact
 * (nearest rank).
 */
import { inTransaction, type Pool } from "../db/pool.js";
import type { ActivityRow, RollupQueries } from "./queries/rollup-queries.js";
import type { JobRegistry } from "./registry.js";

/** Minutes before the last final one that every run recomputes (late events). */
export const ROLLUP_LOOKBACK_MINUTES = 5;
/** How far back the first run starts. */
export const FIRST_ROLLUP_MINUTES = 60;
/** A transaction older than this is not waited for (a stuck session must not stop analytics). */
export const STUCK_TRANSACTION_SECONDS = 600;
/** Retention of per-minute rollups (GetMetrics windows reach back 7 days). */
export const MINUTE_ROLLUP_RETENTION_SECONDS = 8 * 24 * 60 * 60;
/** Retention of per-hour rollups. */
export const HOUR_ROLLUP_RETENTION_SECONDS = 90 * 24 * 60 * 60;
/** Most durations a percentile is computed from; beyond, each minute is sampled evenly. */
export const MAX_PERCENTILE_SAMPLES = 100_000;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const floorTo = (d: Date, unit: number) => new Date(Math.floor(d.getTime() / unit) * unit);
const ceilTo = (d: Date, unit: number) => new Date(Math.ceil(d.getTime() / unit) * unit);

/** Activity of one job type over a window. */
export interface Activity {
  added: number;
  started: number;
  completed: number;
  failed: number;
  deadLettered: number;
  cancelled: number;
  retried: number;
  expired: number;
  /** Sorted durations in milliseconds (possibly sampled, see MAX_PERCENTILE_SAMPLES). */
  waitMs: number[];
  runMs: number[];
  waitCount: number;
  runCount: number;
}

/** The nearest-rank percentile of sorted values (`p` in 0..100]. */
export function percentile(sorted: readonly number[], p: number): number | undefined {
  if (sorted.length === 0) return undefined;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

function merge(rows: ActivityRow[]): Activity {
  const a: Activity = {
    added: 0,
    started: 0,
    completed: 0,
    failed: 0,
    deadLettered: 0,
    cancelled: 0,
    retried: 0,
    expired: 0,
    waitMs: [],
    runMs: [],
    waitCount: 0,
    runCount: 0,
  };
  const waits: number[][] = [];
  const runs: number[][] = [];
  for (const r of rows) {
    a.added += r.added;
    a.started += r.started;
    a.completed += r.completed;
    a.failed += r.failed;
    a.deadLettered += r.dead_lettered;
    a.cancelled += r.cancelled;
    a.retried += r.retried;
    a.expired += r.expired;
    waits.push(r.wait_ms.map(Number));
    runs.push(r.run_ms.map(Number));
  }
  const combine = (lists: number[][]) => {
    const total = lists.reduce((n, l) => n + l.length, 0);
    const stride = Math.max(1, Math.ceil(total / MAX_PERCENTILE_SAMPLES));
    const out = Float64Array.from(stride === 1 ? lists.flat() : lists.flatMap((l) => l.filter((_, i) => i % stride === Math.floor(stride / 2))));
    return { values: Array.from(out.sort()), total };
  };
  const w = combine(waits);
  const r = combine(runs);
  a.waitMs = w.values;
  a.waitCount = w.total;
  a.runMs = r.values;
  a.runCount = r.total;
  return a;
}

export interface AnalyticsDeps {
  pool: Pool;
  registry: JobRegistry;
  queries: RollupQueries;
  /** How long events are kept: minutes older than that cannot be recomputed. */
  eventRetentionSeconds: number;
}

/**
 * The oldest time a rollup of `bucket` may be recomputed from: minutes come from the events (kept
 * EVENT_RETENTION_SECONDS), hours from the minutes (kept MINUTE_ROLLUP_RETENTION_SECONDS). A rollup
 * older than that would be deleted and rebuilt from data that is gone, so no run reaches before it.
 */
export function rollupHorizon(bucket: "minute" | "hour", now: Date, eventRetentionSeconds: number): Date {
  return bucket === "hour"
    ? ceilTo(new Date(now.getTime() - MINUTE_ROLLUP_RETENTION_SECONDS * 1000), HOUR)
    : ceilTo(new Date(now.getTime() - eventRetentionSeconds * 1000), MINUTE);
}

/** A range to (re)compute; unset: from shortly before the last final minute rolled up, through the last final minute. */
export interface RollupRange {
  from?: Date;
  to?: Date;
  bucket?: "minute" | "hour";
}

/** The analytics of an installation. */
export function createAnalytics(deps: AnalyticsDeps) {
  const { pool, registry, queries } = deps;
  // Asked each time: registered job types come and go.
  const queueNames = () => registry.types.map((t) => t.bossQueue);

  return {
    /**
     * Rolls up a range of minutes (or hours) and returns what it computed. A range reaching before
     * {@link rollupHorizon} starts at the horizon: what the retained data covers is rebuilt, nothing older.
     */
    async rollup(range: RollupRange = {}): Promise<{ from: Date; to: Date; minutes: number; hours: number; rolledThrough?: Date }> {
      const finalBefore = await queries.finalBefore(pool, STUCK_TRANSACTION_SECONDS);
      const rolledThrough = await queries.rolledThrough(pool);
      const horizon = rollupHorizon(range.bucket ?? "minute", new Date(), deps.eventRetentionSeconds);
      const notBefore = (d: Date) => (d < horizon ? horizon : d);
      if (range.bucket === "hour") {
        const from = notBefore(floorTo(range.from ?? new Date(finalBefore.getTime() - HOUR), HOUR));
        const to = new Date(Math.min(ceilTo(range.to ?? finalBefore, HOUR).getTime(), ceilTo(finalBefore, HOUR).getTime()));
        if (from >= to) return { from, to, minutes: 0, hours: 0, rolledThrough };
        const hours = await inTransaction(pool, async (tx) => {
          await queries.lock(tx);
          return queries.rollupHours(tx, from, to);
        });
        return { from, to, minutes: 0, hours, rolledThrough };
      }
      const explicit = range.from !== undefined || range.to !== undefined;
      const from = notBefore(
        range.from
          ? floorTo(range.from, MINUTE)
          : new Date(
              (rolledThrough ?? new Date(finalBefore.getTime() - FIRST_ROLLUP_MINUTES * MINUTE)).getTime() -
                (rolledThrough ? ROLLUP_LOOKBACK_MINUTES * MINUTE : 0),
            ),
      );
      const to = new Date(Math.min(ceilTo(range.to ?? finalBefore, MINUTE).getTime(), finalBefore.getTime()));
      if (from >= to) return { from, to, minutes: 0, hours: 0, rolledThrough };
      return inTransaction(pool, async (tx) => {
        // Runs one at a time: two would delete and insert the same minutes, and one of them fail.
        await queries.lock(tx);
        const minutes = await queries.rollupMinutes(tx, from, to, queueNames());
        const hours = await queries.rollupHours(tx, floorTo(from, HOUR), ceilTo(to, HOUR));
        // Only a run that covered everything since the last final minute moves the mark.
        if (!explicit || !rolledThrough || from <= rolledThrough) await queries.setRolledThrough(tx, to);
        await queries.sweep(tx, MINUTE_ROLLUP_RETENTION_SECONDS, HOUR_ROLLUP_RETENTION_SECONDS);
        return { from, to, minutes, hours, rolledThrough: await queries.rolledThrough(tx) };
      });
    },

    /**
     * Activity per job type over [end - windowSeconds, end): final minutes from the rollups, the rest
     * (the window's partial first minute, and everything after the last rollup) from the events.
     */
    async activity(windowSeconds: number, end: Date): Promise<Map<string, Activity>> {
      const start = new Date(end.getTime() - windowSeconds * 1000);
      const rolledThrough = (await queries.rolledThrough(pool)) ?? new Date(0);
      const fullStart = ceilTo(start, MINUTE);
      const fullEnd = new Date(Math.min(rolledThrough.getTime(), floorTo(end, MINUTE).getTime()));
      const rows: ActivityRow[] = [];
      const names = queueNames();
      if (fullEnd > fullStart) {
        const [head, middle, tail] = await Promise.all([
          queries.fromEvents(pool, start, fullStart, names),
          queries.minutes(pool, fullStart, fullEnd, names),
          queries.fromEvents(pool, fullEnd, end, names),
        ]);
        rows.push(...head, ...middle, ...tail);
      } else {
        rows.push(...(await queries.fromEvents(pool, start, end, names)));
      }
      const byType = new Map<string, ActivityRow[]>();
      for (const r of rows) {
        const type = registry.byBossQueue(r.queue_name)?.type.type;
        if (type) byType.set(type, [...(byType.get(type) ?? []), r]);
      }
      return new Map(registry.types.map((t) => [t.type, merge(byType.get(t.type) ?? [])]));
    },

    /** Merges activities (a queue's from its job types'). */
    combine(activities: Activity[]): Activity {
      const rows: ActivityRow[] = activities.map((a) => ({
        queue_name: "",
        added: a.added,
        started: a.started,
        completed: a.completed,
        failed: a.failed,
        dead_lettered: a.deadLettered,
        cancelled: a.cancelled,
        retried: a.retried,
        expired: a.expired,
        wait_ms: a.waitMs,
        run_ms: a.runMs,
      }));
      const merged = merge(rows);
      merged.waitCount = activities.reduce((n, a) => n + a.waitCount, 0);
      merged.runCount = activities.reduce((n, a) => n + a.runCount, 0);
      return merged;
    },
  };
}

export type Analytics = ReturnType<typeof createAnalytics>;
