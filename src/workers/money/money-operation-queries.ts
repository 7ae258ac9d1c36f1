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

/** An operation to create. */
export interface NewOperation {
  key: OperationKey;
  terms: Record<string, unknown>;
  holder: Holder;
  payment?: { payer: string; paymentId: string; amount: number; currency: string };
}

const COLUMNS = "kind, principal, business_key, terms, state, job_id, retry_count, payer, payment_id, amount, currency, result";

/** The money operation queries of one installation. */
export function moneyOperationQueries(schema: string) {
  const table = qualified(schema, "money_operation");
  return {
    /** The operation, locked for this transaction. */
    async lock(db: Queryable, k: OperationKey): Promise<OperationRow | undefined> {
      const { rows } = await db.query<OperationRow>(`SELECT ${COLUMNS} FROM ${table} WHERE kind = $1 AND principal = $2 AND business_key = $3 FOR UPDATE`, [
        k.kind,
        k.principal,
        k.key,
      ]);
      return rows[0];
    },

    /**
     * Creates operations in one statement, each held by its attempt; says for each whether it was
     * created (false: it existed already, or another item of the batch had the same key first).
     */
    async createMany(db: Queryable, items: NewOperation[]): Promise<boolean[]> {
      const { rows } = await db.query<{ kind: string; principal: string; business_key: string; job_id: string }>(
        `INSERT INTO ${table} (kind, principal, business_key, terms, state, job_id, retry_count, payer, payment_id, amount, currency)
         SELECT r.kind, r.principal, r.business_key, r.terms, 'pending', r.job_id, r.retry_count, r.payer, r.payment_id, r.amount, r.currency
         FROM jsonb_to_recordset($1::jsonb) AS r(kind text, principal text, business_key text, terms jsonb, job_id uuid, retry_count int,
           payer text, payment_id text, amount bigint, currency text)
         ON CONFLICT (kind, principal, business_key) DO NOTHING
         RETURNING kind, principal, business_key, job_id`,
        [
          JSON.stringify(
            items.map((i) => ({
              kind: i.key.kind,
              principal: i.key.principal,
              business_key: i.key.key,
              terms: i.terms,
              job_id: i.holder.jobId,
              retry_count: i.holder.retryCount,
              payer: i.payment?.payer ?? null,
              payment_id: i.payment?.paymentId ?? null,
              amount: i.payment?.amount ?? null,
              currency: i.payment?.currency ?? null,
            })),
          ),
        ],
      );
      const created = new Set(rows.map((r) => `${r.kind}\n${r.principal}\n${r.business_key}\n${r.job_id}`));
      return items.map((i) => created.has(`${i.key.kind}\n${i.key.principal}\n${i.key.key}\n${i.holder.jobId}`));
    },

    /** Creates the operation, held by `holder`; undefined when it exists already. */
    async create(
      db: Queryable,
      k: OperationKey,
      terms: Record<string, unknown>,
      holder: Holder,
      payment?: { payer: string; paymentId: string; amount: number; currency: string },
    ): Promise<OperationRow | undefined> {
      const { rows } = await db.query<OperationRow>(
        `INSERT INTO ${table} (kind, principal, business_key, terms, state, job_id, retry_count, payer, payment_id, amount, currency)
         VALUES ($1, $2, $3, $4, 'pending', $5, $6, $7, $8, $9, $10)
         ON CONFLICT (kind, principal, business_key) DO NOTHING
         RETURNING ${COLUMNS}`,
        [
          k.kind,
          k.principal,
          k.key,
          terms,
          holder.jobId,
          holder.retryCount,
          payment?.payer ?? null,
          payment?.paymentId ?? null,
          payment?.amount ?? null,
          payment?.currency ?? null,
        ],
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

    /**
     * Records providers' answers, many operations in one statement. The first success of an operation
     * stays: a later one (the same key, so the same effect) changes nothing.
     */
    async succeed(db: Queryable, done: { key: OperationKey; holder: Holder; result: Record<string, unknown> }[]): Promise<void> {
      await db.query(
        `UPDATE ${table} m SET state = 'succeeded', result = r.result, job_id = r.job_id, retry_count = r.retry_count, error = NULL, updated_at = now()
         FROM jsonb_to_recordset($1::jsonb) AS r(kind text, principal text, business_key text, job_id uuid, retry_count int, result jsonb)
         WHERE m.kind = r.kind AND m.principal = r.principal AND m.business_key = r.business_key AND m.state <> 'succeeded'`,
        [
          JSON.stringify(
            done.map((d) => ({
              kind: d.key.kind,
              principal: d.key.principal,
              business_key: d.key.key,
              job_id: d.holder.jobId,
              retry_count: d.holder.retryCount,
              result: d.result,
            })),
          ),
        ],
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
