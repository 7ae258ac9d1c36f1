/**
 * The service's schema migrations: numbered `.sql` files in `migrations/`, applied in order at
 * start. Each runs in its own transaction that records itself first, so a failed migration leaves
 * nothing behind. Replicas starting together serialise on an advisory lock held on a dedicated
 * connection (never a pooled one, whose session could be handed to someone else), with a
 * `lock_timeout` so a stuck holder fails the start loudly instead of hanging it.
 *
 * The files name schemas through placeholders, `{{schema}}` (the service's) and `{{boss_schema}}`
 * (pg-boss's), replaced by escaped identifiers, and `{{schema_literal}}` / `{{boss_schema_literal}}`
 * (the same names as quoted string literals, for functions that build names at run time): the only
 * text ever put into the SQL. Values are always parameters.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { Logger } from "../logger.js";
import { quoteIdent, quoteLiteral } from "./sql.js";

/** One migration file. */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** How long a replica waits for another replica's migration before failing its start. */
export const MIGRATION_LOCK_TIMEOUT = "60s";

const migrationsDir = fileURLToPath(new URL("./migrations/", import.meta.url));

/** Reads the migrations, in version order. */
export function loadMigrations(dir = migrationsDir): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => ({ version: Number(file.slice(0, 4)), name: file.replace(/\.sql$/, ""), sql: readFileSync(join(dir, file), "utf8") }));
}

/** Replaces the schema placeholders with escaped identifiers. */
export function renderSql(sql: string, schemas: { schema: string; bossSchema: string }): string {
  return sql
    .replaceAll("{{schema}}", quoteIdent(schemas.schema))
    .replaceAll("{{boss_schema}}", quoteIdent(schemas.bossSchema))
    .replaceAll("{{schema_literal}}", quoteLiteral(schemas.schema))
    .replaceAll("{{boss_schema_literal}}", quoteLiteral(schemas.bossSchema));
}

export interface MigrateOptions {
  url: string;
  schema: string;
  bossSchema: string;
  logger: Logger;
  migrations?: Migration[];
}

/** Applies the pending migrations; returns the versions it applied. */
export async function migrate(options: MigrateOptions): Promise<number[]> {
  const migrations = options.migrations ?? loadMigrations();
  const client = new pg.Client({ connectionString: options.url, application_name: "queue-service:migrate" });
  await client.connect();
  const applied: number[] = [];
  try {
    await client.query(`SET lock_timeout = '${MIGRATION_LOCK_TIMEOUT}'`);
    const lockKey = `queue-service:migrate:${options.schema}`;
    await client.query("SELECT pg_advisory_lock(hashtextextended($1, 0))", [lockKey]);
    try {
      const schema = client.escapeIdentifier(options.schema);
      await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query(`CREATE TABLE IF NOT EXISTS ${schema}.schema_migration (
        version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ version: number }>(`SELECT version FROM ${schema}.schema_migration`);
      const done = new Set(rows.map((r) => r.version));
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await client.query("BEGIN");
        try {
          await client.query(`INSERT INTO ${schema}.schema_migration (version, name) VALUES ($1, $2)`, [m.version, m.name]);
          await client.query(renderSql(m.sql, options));
          await client.query("COMMIT");
        } catch (err) {
          await client.query("ROLLBACK").catch(() => {});
          throw new Error(`migration ${m.name} failed: ${(err as Error).message}`, { cause: err });
        }
        applied.push(m.version);
        options.logger.info({ migration: m.name }, "applied migration");
      }
    } finally {
      await client.query("SELECT pg_advisory_unlock(hashtextextended($1, 0))", [lockKey]).catch(() => {});
    }
  } finally {
    await client.end().catch(() => {});
  }
  return applied;
}
