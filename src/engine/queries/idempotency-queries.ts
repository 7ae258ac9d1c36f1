/**
 * SQL of the idempotency keys: claiming keys for new jobs, reading the ones already taken, and
 * sweeping expired keys.
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";

/** A key to claim for a new job. */
export interface KeyClaim {
  key: string;
  requestHash: Buffer;
  jobId: string;
}

/** A key already taken, within the window. */
export interface TakenKey {
  key: string;
  requestHash: Buffer;
  jobId: string;
}

/** The idempotency queries of one installation. */
export function idempotencyQueries(schema: string) {
  const table = qualified(schema, "idempotency_key");
  return {
    /**
     * Claims keys for `principal` (in key order, so concurrent batches lock in one order and cannot
     * deadlock). A key held by a concurrent transaction waits for it. Returns the keys claimed: new
     * ones, and ones whose previous use is older than the window.
     */
    async claim(db: Queryable, principal: string, claims: KeyClaim[], windowSeconds: number): Promise<Set<string>> {
      if (claims.length === 0) return new Set();
      const sorted = [...claims].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      const { rows } = await db.query<{ key: string }>(
        `INSERT INTO ${table} AS k (principal, key, request_hash, job_id)
         SELECT $1, c.key, c.request_hash, c.job_id
         FROM unnest($2::text[], $3::bytea[], $4::uuid[]) WITH ORDINALITY AS c(key, request_hash, job_id, ord)
         ORDER BY c.ord
         ON CONFLICT (principal, key) DO UPDATE
           SET request_hash = EXCLUDED.request_hash, job_id = EXCLUDED.job_id, created_at = now()
           WHERE k.created_at < now() - $5 * interval '1 second'
         RETURNING key`,
        [principal, sorted.map((c) => c.key), sorted.map((c) => c.requestHash), sorted.map((c) => c.jobId), windowSeconds],
      );
      return new Set(rows.map((r) => r.key));
    },

    /** The keys of `principal` taken within the window. */
    async taken(db: Queryable, principal: string, keys: string[], windowSeconds: number): Promise<TakenKey[]> {
      if (keys.length === 0) return [];
      const { rows } = await db.query<{ key: string; request_hash: Buffer; job_id: string }>(
        `SELECT key, request_hash, job_id FROM ${table}
         WHERE principal = $1 AND key = ANY($2::text[]) AND created_at >= now() - $3 * interval '1 second'`,
        [principal, keys, windowSeconds],
      );
      return rows.map((r) => ({ key: r.key, requestHash: r.request_hash, jobId: r.job_id }));
    },

    /** Moves a key to a new job (its old job no longer exists). */
    async reassign(db: Queryable, principal: string, claim: KeyClaim): Promise<void> {
      await db.query(`UPDATE ${table} SET request_hash = $3, job_id = $4, created_at = now() WHERE principal = $1 AND key = $2`, [
        principal,
        claim.key,
        claim.requestHash,
        claim.jobId,
      ]);
    },

    /** Deletes up to `limit` keys older than the window; returns how many. */
    async sweep(db: Queryable, windowSeconds: number, limit: number): Promise<number> {
      const { rowCount } = await db.query(
        `DELETE FROM ${table} WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM ${table} WHERE created_at < now() - $1 * interval '1 second' LIMIT $2))`,
        [windowSeconds, limit],
      );
      return rowCount ?? 0;
    },
  };
}

export type IdempotencyQueries = ReturnType<typeof idempotencyQueries>;
