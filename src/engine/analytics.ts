/**
 * Analytics: job activity rolled up per minute (and per hour) from the event log, by the
 * `analytics:aggregate` job: exact counts and exact percentiles (every duration kept) for reports
 * and history. Live metrics (GetMetrics, WatchMetrics, alerts) read the activity counters instead
 * (activity.ts), which cost the same whatever the number of events.
 *
 * A minute is rolled up only once it is final: every transaction that could still write an event into
 * it (events are stamped with their transaction's start) has ended. Each run recomputes the last few
 * minutes whole, so re-running rewrites and never double-counts, and events that committed late are
 * picked up by the next run. Durations are kept whole, so the hours' percentiles are exact.
 */
import { inTransaction, type Pool } from "../db/pool.js";
import type { RollupQueries } from "./queries/rollup-queries.js";
import type { JobRegistry } from "./registry.js";

/** Minutes before the last final one that every run recomputes (late events). */
export const ROLLUP_LOOKBACK_MINUTES = 5;
/** How far back the first run starts. */
export const FIRST_ROLLUP_MINUTES = 60;
/** A transaction older than this is not waited for (a stuck session must not stop analytics). */
export const STUCK_TRANSACTION_SECONDS = 600;
/** Retention of per-minute rollups (a week of minutes, each hour recomputable from its own). */
export const MINUTE_ROLLUP_RETENTION_SECONDS = 8 * 24 * 60 * 60;
/** Retention of per-hour rollups. */
export const HOUR_ROLLUP_RETENTION_SECONDS = 90 * 24 * 60 * 60;

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const floorTo = (d: Date, unit: number) => new Date(Math.floor(d.getTime() / unit) * unit);
const ceilTo = (d: Date, unit: number) => new Date(Math.ceil(d.getTime() / unit) * unit);

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
  };
}

export type Analytics = ReturnType<typeof createAnalytics>;
