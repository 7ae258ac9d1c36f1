/**
 * SQL of money operations (one row per business key: src/workers/money/money-operations.ts).
 */
import type { Queryable } from "../../db/pool.js";
import { qualified } from "../../db/sql.js";
import type { MoneyKind } from "../../providers/money-providers.js";

/** A money operation's row. */
export interface OperationRow {
  kind: MoneyKind;
  principal: string;
  business_key: string;
  terms: Record<string, unknown>;
  state: "pending" | "succeeded" | "failed";
  job_id: string;
  retry_count: number;
  payer: string | null;
  payment_id: string | null;
  amount: number | null;
  currency: string | null;
  result: Record<string, unknown> | null;
}

/** Names one operation. */
export interface OperationKey {
  kind: MoneyKind;
  principal: string;
  key: string;
}

/** The attempt holding an operation. */
export interface Holder {
  jobId: string;
  retryCount: number;
}

const COLUMNS = "kind, principal, business_key, terms, state, job_id, retry_count, payer, payment_id, amount, currency, result";

/** The money operation queries of one installation. */
export function moneyOperationQueries(schema: string) {
  const table = qualified(schema, "money_operation");
  return {
    /** The operation, locked for this transaction. */
    async lock(db: Queryable, k: OperationKey): Promise<OperationRow | undefined> {
      const { rows } = await db.query<OperationRow>(`SELECT ${COLUMNS} FROM ${table} WHERE kind = $1 AND principal = $2 AND business_key = $3 FOR UPDATE`, [k.kind, k.principal, k.key]);
      return rows[0];
    },

    /** Creates the operation, held by `holder`; undefined when it exists already. */
    async create(db: Queryable, k: OperationKey, terms: Record<string, unknown>, holder: Holder, payment?: { payer: string; paymentId: string; amount: number; currency: string }): Promise<OperationRow | undefined> {
      const { rows } = await db.query<OperationRow>(
        `INSERT INTO ${table} (kind, principal, business_key, terms, state, job_id, retry_count, payer, payment_id, amount, currency)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10)
         ON CONFLICT (kind, principal, business_key) DO NOTHING
         RETURNING ${COLUMNS}`,
        [k.kind, k.principal, k.key, terms, holder.jobId, holder.retryCount, payment?.payer ?? null, payment?.paymentId ?? null, payment?.amount ?? null, payment?.currency ?? null],
      );
      return rows[0];
    },

    /** Hands a pending or failed operation to `holder` (pending again). */
    async takeOver(db: Queryable, k: OperationKey, holder: Holder): Promise<void> {
      await db.query(
        `UPDATE ${table} SET state = 'pending', job_id = $4, retry_count = $5, error = NULL, updated_at = now()
         WHERE kind = $1 AND principal = $2 AND business_key = $3 AND state <> 'succeeded'`,
        [k.kind, k.principal, k.key, holder.jobId, holder.retryCount],
      );
    },

    /** Records the provider's answer. The first success stays: a later one (same key) changes nothing. */
    async succeed(db: Queryable, k: OperationKey, holder: Holder, result: Record<string, unknown>): Promise<void> {
      await db.query(
        `UPDATE ${table} SET state = 'succeeded', result = $6, job_id = $4, retry_count = $5, error = NULL, updated_at = now()
         WHERE kind = $1 AND principal = $2 AND business_key = $3 AND state <> 'succeeded'`,
        [k.kind, k.principal, k.key, holder.jobId, holder.retryCount, result],
      );
    },

    /** Records a permanent failure, if `holder` still holds the operation. */
    async fail(db: Queryable, k: OperationKey, holder: Holder, error: { message: string; reason: string }): Promise<void> {
      await db.query(
        `UPDATE ${table} SET state = 'failed', error = $6, updated_at = now()
         WHERE kind = $1 AND principal = $2 AND business_key = $3 AND state = 'pending' AND job_id = $4 AND retry_count = $5`,
        [k.kind, k.principal, k.key, holder.jobId, holder.retryCount, error],
      );
    },

    /**
     * The charges of a payment, locked (so refunds of one payment run one at a time): the principal's
     * own, or, with `anyPrincipal`, every principal's (the caller's own first).
     */
    async charges(db: Queryable, paymentId: string, principal: string, anyPrincipal: boolean): Promise<OperationRow[]> {
      const { rows } = await db.query<OperationRow>(
        `SELECT ${COLUMNS} FROM ${table}
         WHERE kind = 'charge' AND business_key = $1 AND ($3 OR principal = $2)
         ORDER BY principal = $2 DESC, principal
         LIMIT 2
         FOR UPDATE`,
        [paymentId, principal, anyPrincipal],
      );
      return rows;
    },

    /** What the refunds of a payment take from its charge (those pending or done). */
    async refunded(db: Queryable, payer: string, paymentId: string): Promise<number> {
      const { rows } = await db.query<{ refunded: number }>(
        `SELECT COALESCE(sum(amount), 0)::bigint AS refunded FROM ${table}
         WHERE kind = 'refund' AND payer = $1 AND payment_id = $2 AND state IN ('pending', 'succeeded')`,
        [payer, paymentId],
      );
      return Number(rows[0]!.refunded);
    },
  };
}

export type MoneyOperationQueries = ReturnType<typeof moneyOperationQueries>;
