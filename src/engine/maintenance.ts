/**
 * The service's own maintenance loop (pg-boss maintains its tables itself): expired idempotency keys
 * job events past their retention and old dependency edges are deleted in small batches, by one
 * replica at a time.
 */
import type { Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import type { IdempotencyQueries } from "./queries/idempotency-queries.js";
import { QUEUED_RETENTION_SECONDS } from "./store/boss.js";
import type { DependencyQueries } from "./store/dependency-queries.js";
import type { EventQueries } from "./store/event-queries.js";

/** How often maintenance runs. */
export const MAINTENANCE_INTERVAL_MS = 60_000;
/** Rows deleted per statement, so no sweep holds locks for long. */
export const SWEEP_BATCH = 5000;
/**
 * How long a dependency edge is kept: longer than any job lives (a waiting job at most
 * QUEUED_RETENTION_SECONDS, a finished one at most its queue's deletion delay after that).
 */
export const DEPENDENCY_RETENTION_SECONDS = QUEUED_RETENTION_SECONDS + 60 * 24 * 60 * 60;

export interface MaintenanceOptions {
  pool: Pool;
  schema: string;
  events: EventQueries;
  keys: IdempotencyQueries;
  dependencies: DependencyQueries;
  idempotencyWindowSeconds: number;
  eventRetentionSeconds: number;
  logger: Logger;
  intervalMs?: number;
}

/** A running maintenance loop. */
export interface Maintenance {
  /** Runs one pass now (tests, and the first pass at start). */
  runOnce(): Promise<{ keys: number; events: number }>;
  stop(): Promise<void>;
}

/** Starts the loop. */
export function startMaintenance(options: MaintenanceOptions): Maintenance {
  const { pool, logger } = options;
  const lockKey = `queue-service:maintenance:${options.schema}`;
  let running: Promise<{ keys: number; events: number }> | undefined;
  let stopped = false;

  const sweepAll = async (sweep: () => Promise<number>): Promise<number> => {
    let total = 0;
    for (;;) {
      const n = await sweep();
      total += n;
      if (n < SWEEP_BATCH || stopped) return total;
    }
  };

  async function pass(): Promise<{ keys: number; events: number }> {
    const client = await pool.connect();
    try {
      const { rows } = await client.query<{ locked: boolean }>("SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked", [lockKey]);
      if (!rows[0]!.locked) return { keys: 0, events: 0 };
      try {
        const keys = await sweepAll(() => options.keys.sweep(client, options.idempotencyWindowSeconds, SWEEP_BATCH));
        const events = await sweepAll(() => options.events.sweep(client, options.eventRetentionSeconds, SWEEP_BATCH));
        const edges = await sweepAll(() => options.dependencies.sweep(client, DEPENDENCY_RETENTION_SECONDS, SWEEP_BATCH));
        if (edges > 0) logger.info({ edges }, "maintenance: deleted old dependency edges");
        if (keys + events > 0) logger.info({ keys, events }, "maintenance: deleted expired idempotency keys and events");
        return { keys, events };
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [lockKey]).catch(() => {});
      }
    } finally {
      client.release();
    }
  }

  const runOnce = () => {
    running ??= pass().finally(() => (running = undefined));
    return running;
  };
  const timer = setInterval(() => {
    runOnce().catch((err: Error) => logger.warn({ err: err.message }, "maintenance pass failed"));
  }, options.intervalMs ?? MAINTENANCE_INTERVAL_MS);
  timer.unref();
  return {
    runOnce,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => {});
    },
  };
}
