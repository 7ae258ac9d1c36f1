/**
 * The job engine: pg-boss plus the service's own tables, behind one object the RPC layer and the
 * workers use. Later parts (job events, enqueue, dispatch, pause, limits) hang off it.
 */
import type { PgBoss } from "pg-boss";
import { migrate } from "../db/migrate.js";
import { createPool, type Pool } from "../db/pool.js";
import type { Logger } from "../logger.js";
import { startBoss } from "./boss.js";
import type { JobRegistry } from "./registry.js";

export interface EngineOptions {
  url: string;
  schema: string;
  bossSchema: string;
  poolMax: number;
  bossPoolMax: number;
  registry: JobRegistry;
  logger: Logger;
  onBossError?: (err: Error) => void;
}

/** A started engine. */
export interface Engine {
  readonly boss: PgBoss;
  readonly pool: Pool;
  readonly registry: JobRegistry;
  readonly schema: string;
  readonly bossSchema: string;
  /** Drains pg-boss (running jobs get up to `graceMs`) and closes the pools. */
  stop(graceMs: number): Promise<void>;
}

/** Starts pg-boss, applies the service's migrations and opens the service's pool. */
export async function startEngine(options: EngineOptions): Promise<Engine> {
  const { logger } = options;
  const boss = await startBoss({
    url: options.url,
    schema: options.bossSchema,
    poolMax: options.bossPoolMax,
    registry: options.registry,
    logger,
    onError: options.onBossError,
  });
  try {
    await migrate({ url: options.url, schema: options.schema, bossSchema: options.bossSchema, logger });
  } catch (err) {
    await boss.stop({ graceful: false, close: true }).catch(() => {});
    throw err;
  }
  const pool = createPool({ url: options.url, max: options.poolMax, applicationName: "queue-service", logger });
  let stopping: Promise<void> | undefined;
  return {
    boss,
    pool,
    registry: options.registry,
    schema: options.schema,
    bossSchema: options.bossSchema,
    stop(graceMs) {
      stopping ??= (async () => {
        await boss.stop({ graceful: true, close: true, timeout: Math.max(1000, graceMs) }).catch((err: Error) => logger.warn({ err: err.message }, "pg-boss stop failed"));
        await pool.end().catch(() => {});
      })();
      return stopping;
    },
  };
}
