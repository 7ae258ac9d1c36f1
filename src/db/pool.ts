/**
 * The service's own PostgreSQL pool (pg-boss keeps its own pool besides).
 */
import pg from "pg";
import type { Logger } from "../logger.js";
import { isDatabaseUnavailable } from "./errors.js";

export type Pool = pg.Pool;
export type PoolClient = pg.PoolClient;

/** A value that can be passed as a query parameter. */
export type Queryable = Pick<pg.Pool, "query"> | Pick<pg.PoolClient, "query">;

// int8 (count(*), bigserial) as JS numbers: every count here is far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v));

export interface PoolOptions {
  url: string;
  max: number;
  applicationName: string;
  logger: Logger;
}

/** Creates a pool whose idle-client errors (a restarted server) are logged, not thrown. */
export function createPool(options: PoolOptions): Pool {
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max,
    application_name: options.applicationName,
    connectionTimeoutMillis: 5000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
  });
  pool.on("error", (err) => options.logger.warn({ err: err.message }, "idle database connection failed"));
  // pg-pool takes its own error listener off a client while the client is checked out. A connection
  // lost then (PostgreSQL restarting while a transaction is between two statements) would emit
  // 'error' with no listener: an uncaught exception that ends the process. The statement in flight,
  // or the next one, fails with the connection error anyway (UNAVAILABLE), and the pool discards the
  // client when it is released.
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

/** Runs `fn` in a transaction on one client of `pool`, rolling back on error. */
export async function inTransaction<T>(pool: Pool, fn: (client: PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (err) {
    // A connection that failed mid-transaction is discarded rather than returned to the pool.
    if (isDatabaseUnavailable(err)) broken = err as Error;
    else await client.query("ROLLBACK").catch((e: Error) => (broken = e));
    throw err;
  } finally {
    client.release(broken);
  }
}
