/**
 * SQL of job dependencies (migration 0017): the parents an added job names, locked so that none can
 * reach a final state between the check and the child's insert, and the edges the settling trigger
 * follows when a parent finishes.
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";
import type { BossState } from "./job-record.js";

/** A parent as an added job sees it. */
export interface ParentRow {
  id: string;
  name: string;
  state: BossState;
  principal: string | null;
}

/** One edge to write: `settled` when the parent's final state is already known. */
export interface Edge {
  parentId: string;
  childId: string;
  childName: string;
  settled: boolean;
}

/** The dependency queries of one installation. */
export function dependencyQueries(schema: string, bossSchema: string) {
  const job = qualified(bossSchema, "job");
  const edges = qualified(schema, "job_dependency");
  return {
    /**
     * The parents that exist among `ids` in the given pg-boss queues, share-locked for the rest of
     * the transaction: a parent finishing meanwhile waits for the children's edges to commit, and
     * then settles them.
     */
    async lockParents(db: Queryable, ids: string[], bossQueues: readonly string[]): Promise<ParentRow[]> {
      if (ids.length === 0) return [];
      const { rows } = await db.query<ParentRow>(
        `SELECT id, name, state::text AS state, data ->> 'principal' AS principal FROM ${job}
         WHERE id = ANY($1::uuid[]) AND name = ANY($2::text[]) ORDER BY id FOR SHARE`,
        [ids, bossQueues],
      );
      return rows;
    },

    async insertEdges(db: Queryable, list: Edge[]): Promise<void> {
      if (list.length === 0) return;
      await db.query(
        `INSERT INTO ${edges} (parent_id, child_id, child_name, settled)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bool[])`,
        [list.map((e) => e.parentId), list.map((e) => e.childId), list.map((e) => e.childName), list.map((e) => e.settled)],
      );
    },

    /** Whether `principal` added a child of `parentId` (whoever may read a child may read its parents). */
    async childOwnedBy(db: Queryable, parentId: string, principal: string): Promise<boolean> {
      const { rows } = await db.query(
        `SELECT 1 FROM ${edges} d JOIN ${job} c ON c.name = d.child_name AND c.id = d.child_id
         WHERE d.parent_id = $1 AND c.data ->> 'principal' = $2 LIMIT 1`,
        [parentId, principal],
      );
      return rows.length > 0;
    },

    /** Deletes up to `limit` edges older than `seconds` (their jobs are gone by then); returns how many. */
    async sweep(db: Queryable, seconds: number, limit: number): Promise<number> {
      const { rowCount } = await db.query(
        `DELETE FROM ${edges} WHERE ctid = ANY (ARRAY(
           SELECT ctid FROM ${edges} WHERE created_at < now() - $1 * interval '1 second' LIMIT $2))`,
        [seconds, limit],
      );
      return rowCount ?? 0;
    },
  };
}

export type DependencyQueries = ReturnType<typeof dependencyQueries>;
