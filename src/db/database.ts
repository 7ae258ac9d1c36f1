/**
 * Where the database comes from: DATABASE_URL, or (development only) an embedded PostgreSQL in
 * DATA_DIR/pg.
 */
import { join } from "node:path";
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "./embedded-postgres.js";

/** The database the service uses. */
export interface Database {
  readonly url: string;
  /** Set when the service started its own embedded PostgreSQL. */
  readonly embedded?: EmbeddedPostgres;
}

/** Opens DATABASE_URL, or starts the embedded PostgreSQL (with a warning) when it is unset. */
export async function openDatabase(config: Config, logger: Logger): Promise<Database> {
  if (config.databaseUrl) return { url: config.databaseUrl };
  const dataDir = join(config.dataDir, "pg");
  logger.warn({ dataDir }, "DATABASE_URL is not set: using an embedded PostgreSQL (development only; refused with NODE_ENV=production)");
  const embedded = await startEmbeddedPostgres({ dataDir, logger });
  return { url: embedded.url, embedded };
}
