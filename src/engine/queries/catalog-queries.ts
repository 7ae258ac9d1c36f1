/**
 * SQL of the catalog: the queues and job types registered through the API (migration 0015).
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";
import type { QueuePolicy } from "../registry.js";

export interface CatalogQueueRow {
  name: string;
  description: string;
  policy: QueuePolicy;
  created_at: Date;
  updated_at: Date;
}

export interface CatalogTypeRow {
  name: string;
  queue: string;
  payload_schema: Record<string, unknown>;
  producers: string[];
  workers: string[];
  description: string;
  version: number;
  created_at: Date;
  updated_at: Date;
}

/** The catalog queries of one installation. */
export function catalogQueries(schema: string) {
  const queues = qualified(schema, "catalog_queue");
  const types = qualified(schema, "catalog_job_type");
  const version = qualified(schema, "catalog_version");
  const typeColumns = "name, queue, payload_schema, producers, workers, description, version, created_at, updated_at";
  return {
    /** The catalog's version: bumped by every change. */
    async version(db: Queryable): Promise<string> {
      const { rows } = await db.query<{ version: string }>(`SELECT version::text AS version FROM ${version}`);
      return rows[0]!.version;
    },

    /** Everything, with the version it is at (read first: a change meanwhile only causes another load). */
    async load(db: Queryable): Promise<{ version: string; queues: CatalogQueueRow[]; types: CatalogTypeRow[] }> {
      const at = await this.version(db);
      const [q, t] = await Promise.all([
        db.query<CatalogQueueRow>(`SELECT name, description, policy, created_at, updated_at FROM ${queues} ORDER BY name`),
        db.query<CatalogTypeRow>(`SELECT ${typeColumns} FROM ${types} ORDER BY name`),
      ]);
      return { version: at, queues: q.rows, types: t.rows };
    },

    async queue(db: Queryable, name: string): Promise<CatalogQueueRow | undefined> {
      const { rows } = await db.query<CatalogQueueRow>(`SELECT name, description, policy, created_at, updated_at FROM ${queues} WHERE name = $1`, [name]);
      return rows[0];
    },

    /** Adds a queue; undefined when the name is taken. */
    async insertQueue(db: Queryable, q: { name: string; description: string; policy: QueuePolicy }): Promise<CatalogQueueRow | undefined> {
      const { rows } = await db.query<CatalogQueueRow>(
        `INSERT INTO ${queues} (name, description, policy) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING
         RETURNING name, description, policy, created_at, updated_at`,
        [q.name, q.description, JSON.stringify(q.policy)],
      );
      return rows[0];
    },

    async updateQueue(db: Queryable, q: { name: string; description: string; policy: QueuePolicy }): Promise<CatalogQueueRow | undefined> {
      const { rows } = await db.query<CatalogQueueRow>(
        `UPDATE ${queues} SET description = $2, policy = $3, updated_at = now() WHERE name = $1
         RETURNING name, description, policy, created_at, updated_at`,
        [q.name, q.description, JSON.stringify(q.policy)],
      );
      return rows[0];
    },

    /** Deletes a queue that no job type names (checked in the same statement); whether it did. */
    async deleteQueue(db: Queryable, name: string): Promise<"deleted" | "missing" | "in-use"> {
      const { rows } = await db.query<{ outcome: "deleted" | "missing" | "in-use" }>(
        `WITH used AS (SELECT EXISTS (SELECT 1 FROM ${types} WHERE queue = $1) AS used),
         gone AS (DELETE FROM ${queues} WHERE name = $1 AND NOT (SELECT used FROM used) RETURNING 1)
         SELECT CASE WHEN EXISTS (SELECT 1 FROM gone) THEN 'deleted'
                     WHEN (SELECT used FROM used) AND EXISTS (SELECT 1 FROM ${queues} WHERE name = $1) THEN 'in-use'
                     ELSE 'missing' END AS outcome`,
        [name],
      );
      return rows[0]!.outcome;
    },

    async type(db: Queryable, name: string, forUpdate = false): Promise<CatalogTypeRow | undefined> {
      const { rows } = await db.query<CatalogTypeRow>(`SELECT ${typeColumns} FROM ${types} WHERE name = $1${forUpdate ? " FOR UPDATE" : ""}`, [name]);
      return rows[0];
    },

    /** Registers a type; undefined when the name is taken. */
    async insertType(db: Queryable, t: Omit<CatalogTypeRow, "version" | "created_at" | "updated_at">): Promise<CatalogTypeRow | undefined> {
      const { rows } = await db.query<CatalogTypeRow>(
        `INSERT INTO ${types} (name, queue, payload_schema, producers, workers, description) VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (name) DO NOTHING RETURNING ${typeColumns}`,
        [t.name, t.queue, JSON.stringify(t.payload_schema), t.producers, t.workers, t.description],
      );
      return rows[0];
    },

    /** Changes a type (the schema's version moves on when the schema changed). */
    async updateType(db: Queryable, t: Omit<CatalogTypeRow, "queue" | "version" | "created_at" | "updated_at">): Promise<CatalogTypeRow | undefined> {
      const { rows } = await db.query<CatalogTypeRow>(
        `UPDATE ${types} SET payload_schema = $2, producers = $3, workers = $4, description = $5, updated_at = now(),
           version = version + CASE WHEN payload_schema = $2::jsonb THEN 0 ELSE 1 END
         WHERE name = $1 RETURNING ${typeColumns}`,
        [t.name, JSON.stringify(t.payload_schema), t.producers, t.workers, t.description],
      );
      return rows[0];
    },

    async deleteType(db: Queryable, name: string): Promise<boolean> {
      const { rowCount } = await db.query(`DELETE FROM ${types} WHERE name = $1`, [name]);
      return (rowCount ?? 0) > 0;
    },
  };
}

export type CatalogQueries = ReturnType<typeof catalogQueries>;
