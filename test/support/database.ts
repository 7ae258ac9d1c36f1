/**
 * An isolated pair of schemas (the service's and pg-boss's) per test file, dropped afterwards.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

/** A test file's database: the run's PostgreSQL with schemas of its own. */
export interface TestDatabase {
  readonly url: string;
  readonly schema: string;
  readonly bossSchema: string;
  /** Runs one query on a short-lived connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Drops the schemas. */
  drop(): Promise<void>;
}

/** Names fresh schemas for a test file. */
export function testDatabase(): TestDatabase {
  const url = inject("databaseUrl");
  const suffix = randomBytes(5).toString("hex");
  const schema = `qs_${suffix}`;
  const bossSchema = `pgboss_${suffix}`;
  const query = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      return await client.query<R>(text, values);
    } finally {
      await client.end();
    }
  };
  return {
    url,
    schema,
    bossSchema,
    query,
    async drop() {
      await query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await query(`DROP SCHEMA IF EXISTS "${bossSchema}" CASCADE`);
    },
  };
}
