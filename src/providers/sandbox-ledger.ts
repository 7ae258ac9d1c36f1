/**
 * The sandbox provider: payments, refunds and mints recorded in a ledger table in PostgreSQL, keyed
 * by the job line (`root_job_id`), so each happens once whatever the number of attempts or redrives.
 * The test cards of the API (`tok_decline`, `tok_gateway_timeout`, `tok_flaky`) rehearse every path,
 * and SANDBOX_LATENCY_MS how slow a real provider is. The latency is spent before the effect, while
 * a cancel still stops it; the ledger write is the effect.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { inTransaction, type Pool, type Queryable } from "../db/pool.js";
import { qualified } from "../db/sql.js";
import { PermanentJobError, RetryableJobError } from "../workers/processor.js";
import type { ChargeRequest, MintRequest, MoneyCall, PaymentProvider, MintProvider, RefundRequest } from "./money-providers.js";

/** Payment methods with scripted outcomes. */
export const SANDBOX_CARDS = {
  decline: "tok_decline",
  gatewayTimeout: "tok_gateway_timeout",
  flaky: "tok_flaky",
} as const;

interface LedgerRow {
  kind: string;
  reference: string;
  payment_id: string | null;
  amount: number | null;
  currency: string | null;
  details: Record<string, unknown>;
  created_at: Date;
}

const reference = (prefix: string, root: string) => `${prefix}_${createHash("sha256").update(root).digest("hex").slice(0, 24)}`;

/** The sandbox for payments, refunds and mints. */
export function sandboxProvider(pool: Pool, schema: string, latencyMs: number): PaymentProvider & MintProvider {
  const ledger = qualified(schema, "sandbox_ledger");

  const wait = async (call: MoneyCall) => {
    if (latencyMs > 0) await sleep(latencyMs, undefined, { signal: call.signal }).catch(() => call.signal.throwIfAborted());
    call.signal.throwIfAborted();
  };

  const existing = async (db: Queryable, root: string): Promise<LedgerRow | undefined> =>
    (await db.query<LedgerRow>(`SELECT kind, reference, payment_id, amount, currency, details, created_at FROM ${ledger} WHERE root_job_id = $1`, [root])).rows[0];

  /** What an earlier attempt of the line recorded. The first attempt of a line's first job has no
   *  earlier attempt, so it skips the read (the insert below still stops a second effect). */
  const earlier = (call: MoneyCall): Promise<LedgerRow | undefined> =>
    call.attempt === 1 && call.jobId === call.rootJobId ? Promise.resolve(undefined) : existing(pool, call.rootJobId);

  /** Records the effect once; a second attempt gets the first one's record back. */
  const record = async (db: Queryable, root: string, row: Omit<LedgerRow, "created_at">): Promise<{ row: LedgerRow; replayed: boolean }> => {
    const { rows } = await db.query<LedgerRow>(
      `INSERT INTO ${ledger} (root_job_id, kind, reference, payment_id, amount, currency, details)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (root_job_id) DO NOTHING
       RETURNING kind, reference, payment_id, amount, currency, details, created_at`,
      [root, row.kind, row.reference, row.payment_id, row.amount, row.currency, row.details],
    );
    if (rows[0]) return { row: rows[0], replayed: false };
    return { row: (await existing(db, root))!, replayed: true };
  };

  const gatewayScript = (paymentMethod: string, attempt: number) => {
    if (paymentMethod === SANDBOX_CARDS.decline) throw new PermanentJobError("card declined by the issuer", "CARD_DECLINED");
    if (paymentMethod === SANDBOX_CARDS.gatewayTimeout) throw new RetryableJobError("payment gateway timed out", "GATEWAY_TIMEOUT");
    if (paymentMethod === SANDBOX_CARDS.flaky && attempt === 1) throw new RetryableJobError("payment gateway temporarily unavailable", "GATEWAY_UNAVAILABLE");
  };

  return {
    name: "sandbox",

    async charge(req: ChargeRequest, call: MoneyCall) {
      const done = await earlier(call);
      if (!done) {
        await wait(call);
        gatewayScript(req.paymentMethod, call.attempt);
        call.signal.throwIfAborted();
      }
      const { row, replayed } = done ? { row: done, replayed: true } : await record(pool, call.rootJobId, {
        kind: "charge", reference: reference("ch", call.rootJobId), payment_id: req.paymentId, amount: req.amount, currency: req.currency,
        details: { orderId: req.orderId, customerId: req.customerId },
      });
      return { chargeId: row.reference, status: "succeeded", amount: Number(row.amount), currency: row.currency, paymentId: row.payment_id, provider: "sandbox", replayed, createdAt: row.created_at.toISOString() };
    },

    async refund(req: RefundRequest, call: MoneyCall) {
      const done = await existing(pool, call.rootJobId);
      if (!done) await wait(call);
      const { row, replayed } = done ? { row: done, replayed: true } : await inTransaction(pool, async (tx) => {
        // One refund at a time per payment, so two refunds cannot both fit under what was charged.
        await tx.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [`sandbox-refund:${req.paymentId}`]);
        const again = await existing(tx, call.rootJobId);
        if (again) return { row: again, replayed: true };
        const { rows } = await tx.query<{ charged: number; refunded: number; currencies: string[] }>(
          `SELECT COALESCE(sum(amount) FILTER (WHERE kind = 'charge'), 0)::bigint AS charged,
                  COALESCE(sum(amount) FILTER (WHERE kind = 'refund'), 0)::bigint AS refunded,
                  COALESCE(array_agg(DISTINCT currency) FILTER (WHERE kind = 'charge'), '{}') AS currencies
           FROM ${ledger} WHERE payment_id = $1`,
          [req.paymentId],
        );
        const { charged, refunded, currencies } = rows[0]!;
        if (Number(charged) === 0) throw new PermanentJobError(`payment ${req.paymentId} has no charge to refund`, "PAYMENT_NOT_FOUND");
        if (!currencies.includes(req.currency)) throw new PermanentJobError(`payment ${req.paymentId} was charged in ${currencies.join(", ")}, not ${req.currency}`, "CURRENCY_MISMATCH");
        const left = Number(charged) - Number(refunded);
        if (req.amount > left) {
          throw new PermanentJobError(`refund of ${req.amount} exceeds what is left to refund on payment ${req.paymentId} (${left} of ${charged})`, "REFUND_EXCEEDS_CHARGE");
        }
        call.signal.throwIfAborted();
        return record(tx, call.rootJobId, {
          kind: "refund", reference: reference("re", call.rootJobId), payment_id: req.paymentId, amount: req.amount, currency: req.currency,
          details: req.reason ? { reason: req.reason } : {},
        });
      });
      return { refundId: row.reference, status: "succeeded", amount: Number(row.amount), currency: row.currency, paymentId: row.payment_id, provider: "sandbox", replayed, createdAt: row.created_at.toISOString() };
    },

    async mint(req: MintRequest, call: MoneyCall) {
      const done = await earlier(call);
      if (!done) await wait(call);
      const { row, replayed } = done ? { row: done, replayed: true } : await record(pool, call.rootJobId, {
        kind: "mint", reference: reference("tok", call.rootJobId), payment_id: null, amount: null, currency: null,
        details: { ticketId: req.ticketId, orderId: req.orderId, recipientWallet: req.recipientWallet, metadataUri: req.metadataUri, txHash: `0x${createHash("sha256").update(`tx:${call.rootJobId}`).digest("hex")}` },
      });
      return { tokenId: row.reference, txHash: row.details.txHash, recipientWallet: row.details.recipientWallet, provider: "sandbox", replayed, createdAt: row.created_at.toISOString() };
    },
  };
}
