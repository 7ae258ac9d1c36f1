/**
 * The replicas that are alive: each records a heartbeat every few seconds, and counts the others.
 * API rate limits share a principal's limit among the live replicas (each enforces its share locally,
 * with no database round trip per call).
 */
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { Pool } from "../db/pool.js";
import { qualified } from "../db/sql.js";
import type { Logger } from "../logger.js";

/** Heartbeat period; a replica silent for three periods is not counted. */
export const REPLICA_HEARTBEAT_MS = 5000;

export interface Replicas {
  readonly id: string;
  /** Live replicas (at least 1: this one). */
  count(): number;
  stop(): Promise<void>;
}

/** Registers this replica and keeps its heartbeat. */
export async function startReplicas(pool: Pool, schema: string, logger: Logger, heartbeatMs = REPLICA_HEARTBEAT_MS): Promise<Replicas> {
  const table = qualified(schema, "replica");
  const id = randomUUID();
  const name = `${hostname()}:${process.pid}`;
  let live = 1;
  const beat = async () => {
    try {
      await pool.query(`INSERT INTO ${table} (id, name) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()`, [id, name]);
      const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE heartbeat_at > now() - $1 * interval '1 millisecond'`, [
        heartbeatMs * 3,
      ]);
      live = Math.max(1, rows[0]!.n);
      await pool.query(`DELETE FROM ${table} WHERE heartbeat_at < now() - interval '1 hour'`);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "replica heartbeat failed");
    }
  };
  await beat();
  const timer = setInterval(() => void beat(), heartbeatMs);
  timer.unref();
  return {
    id,
    count: () => live,
    async stop() {
      clearInterval(timer);
      await pool.query(`DELETE FROM ${table} WHERE id = $1`, [id]).catch(() => {});
    },
  };
}
