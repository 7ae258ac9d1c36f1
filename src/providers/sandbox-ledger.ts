/**
 * The sandbox provider: a payment gateway and mint service whose effects are rows of a ledger in
 * PostgreSQL, keyed like a real gateway by the idempotency key it is sent (one effect per key,
 * whatever the number of attempts or jobs), with one account per principal. The test cards of the
 * API (`tok_decline`, `tok_gateway_timeout`, `tok_flaky`) rehearse every path, and
 * SANDBOX_LATENCY_MS how slow a real provider is. The latency is spent before the effect, while a
 * cancel still stops it; the ledger write is the effect.
 */
import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { inTransaction, type Pool, type Queryable } from "../db/pool.js";
import { qualified } from "../db/sql.js";
import { createBatcher } from "../db/statement-batcher.js";
import { PermanentJobError, RetryableJobError } from "../engine/processor.js";
import type { ChargeRequest, MintProvider, MintRequest, MoneyCall, PaymentProvider, ProviderResult, RefundRequest } from "./money-providers.js";

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

type NewLedgerRow = Omit<LedgerRow, "created_at" | "reference"> & { charge_reference?: string };

const referenceOf = (prefix: string, key: string) => `${prefix}_${createHash("sha256").update(key).digest("hex").slice(0, 24)}`;
const prefixes = { charge: "ch", refund: "re", mint: "tok" } as const;

/** The sandbox for payments, refunds and mints. */
export function sandboxProvider(pool: Pool, schema: string, latencyMs: number): PaymentProvider & MintProvider {
  const ledger = qualified(schema, "sandbox_ledger");
  const columns = "kind, reference, payment_id, amount, currency, details, created_at";

  const wait = async (call: MoneyCall) => {
    if (latencyMs > 0) await sleep(latencyMs, undefined, { signal: call.signal }).catch(() => call.signal.throwIfAborted());
    call.signal.throwIfAborted();
  };

  const byKeys = async (db: Queryable, keys: readonly string[]): Promise<LedgerRow | undefined> =>
    keys.length === 0
      ? undefined
      : (await db.query<LedgerRow>(`SELECT ${columns} FROM ${ledger} WHERE idempotency_key = ANY($1::text[]) LIMIT 1`, [keys])).rows[0];

  /** Records effects once per key, in one statement; a repeat of a key gets the first effect back. */
  const recordMany = async (db: Queryable, effects: { call: MoneyCall; row: NewLedgerRow }[]): Promise<{ row: LedgerRow; replayed: boolean }[]> => {
    const { rows } = await db.query<LedgerRow & { idempotency_key: string }>(
      `INSERT INTO ${ledger} (idempotency_key, account, root_job_id, kind, reference, payment_id, charge_reference, amount, currency, details)
       SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(idempotency_key text, account text, root_job_id uuid, kind text, reference text,
         payment_id text, charge_reference text, amount bigint, currency text, details jsonb)
       ON CONFLICT (idempotency_key) DO NOTHING
       RETURNING idempotency_key, ${columns}`,
      [
        JSON.stringify(
          effects.map(({ call, row }) => ({
            idempotency_key: call.idempotencyKey,
            account: call.account,
            root_job_id: call.rootJobId,
            kind: row.kind,
            reference: referenceOf(prefixes[row.kind as keyof typeof prefixes], call.idempotencyKey),
            payment_id: row.payment_id,
            charge_reference: row.charge_reference ?? null,
            amount: row.amount,
            currency: row.currency,
            details: row.details,
          })),
        ),
      ],
    );
    const made = new Map(rows.map((r) => [r.idempotency_key, r]));
    const others = effects.map((e) => e.call.idempotencyKey).filter((k) => !made.has(k));
    const earlier =
      others.length === 0
        ? new Map()
        : new Map(
            (
              await db.query<LedgerRow & { idempotency_key: string }>(
                `SELECT idempotency_key, ${columns} FROM ${ledger} WHERE idempotency_key = ANY($1::text[])`,
                [others],
              )
            ).rows.map((r) => [r.idempotency_key, r]),
          );
    // A key twice in one batch: the first made it, the second replays it.
    const taken = new Set<string>();
    return effects.map(({ call }) => {
      const key = call.idempotencyKey;
      const mine = made.get(key);
      if (mine && !taken.has(key)) {
        taken.add(key);
        return { row: mine, replayed: false };
      }
      return { row: mine ?? earlier.get(key)!, replayed: true };
    });
  };
  /** Records one effect (in a transaction of the caller's, or batched with concurrent ones). */
  const batched = createBatcher({ maxBatch: 500, concurrency: 2, run: (effects: { call: MoneyCall; row: NewLedgerRow }[]) => recordMany(pool, effects) });
  const record = async (db: Queryable | undefined, call: MoneyCall, row: NewLedgerRow): Promise<{ row: LedgerRow; replayed: boolean }> => {
    call.sending();
    return db ? (await recordMany(db, [{ call, row }]))[0]! : batched({ call, row });
  };

  /** What an earlier attempt already did under one of `call.lookupKeys` (or the key itself). */
  const earlier = (call: MoneyCall) => byKeys(pool, call.lookupKeys);

  const gatewayScript = (paymentMethod: string, attempt: number) => {
    if (paymentMethod === SANDBOX_CARDS.decline) throw new PermanentJobError("card declined by the issuer", "CARD_DECLINED");
    if (paymentMethod === SANDBOX_CARDS.gatewayTimeout) throw new RetryableJobError("payment gateway timed out", "GATEWAY_TIMEOUT");
    if (paymentMethod === SANDBOX_CARDS.flaky && attempt === 1) throw new RetryableJobError("payment gateway temporarily unavailable", "GATEWAY_UNAVAILABLE");
  };

  const chargeResult = (row: LedgerRow, replayed: boolean): ProviderResult => ({
    chargeId: row.reference,
    status: "succeeded",
    amount: Number(row.amount),
    currency: row.currency,
    paymentId: row.payment_id,
    provider: "sandbox",
    replayed,
    createdAt: row.created_at.toISOString(),
  });

  return {
    name: "sandbox",

    chargeReference: (result) => (typeof result.chargeId === "string" ? result.chargeId : undefined),

    async charge(req: ChargeRequest, call: MoneyCall) {
      const done = await earlier(call);
      if (done) return chargeResult(done, true);
      await wait(call);
      gatewayScript(req.paymentMethod, call.attempt);
      call.signal.throwIfAborted();
      const { row, replayed } = await record(undefined, call, {
        kind: "charge",
        payment_id: req.paymentId,
        amount: req.amount,
        currency: req.currency,
        details: { orderId: req.orderId, customerId: req.customerId },
      });
      return chargeResult(row, replayed);
    },

    async refund(req: RefundRequest, call: MoneyCall) {
      const result = (row: LedgerRow, replayed: boolean): ProviderResult => ({
        refundId: row.reference,
        status: "succeeded",
        amount: Number(row.amount),
        currency: row.currency,
        paymentId: row.payment_id,
        chargeId: req.charge,
        provider: "sandbox",
        replayed,
        createdAt: row.created_at.toISOString(),
      });
      const done = await earlier(call);
      if (done) return result(done, true);
      await wait(call);
      return inTransaction(pool, async (tx) => {
        // The charge's row is locked, so two refunds of it cannot both fit under what it charged.
        const {
          rows: [charge],
        } = await tx.query<{ amount: number; currency: string }>(
          `SELECT amount, currency FROM ${ledger} WHERE kind = 'charge' AND reference = $1 AND account = $2 FOR UPDATE`,
          [req.charge, call.account],
        );
        if (!charge) throw new PermanentJobError(`payment ${req.paymentId} has no charge to refund`, "PAYMENT_NOT_FOUND");
        const again = await byKeys(tx, [call.idempotencyKey]);
        if (again) return result(again, true);
        if (charge.currency !== req.currency)
          throw new PermanentJobError(`payment ${req.paymentId} was charged in ${charge.currency}, not ${req.currency}`, "CURRENCY_MISMATCH");
        const {
          rows: [sum],
        } = await tx.query<{ refunded: number }>(
          `SELECT COALESCE(sum(amount), 0)::bigint AS refunded FROM ${ledger} WHERE kind = 'refund' AND charge_reference = $1`,
          [req.charge],
        );
        const left = Number(charge.amount) - Number(sum!.refunded);
        if (req.amount > left) {
          throw new PermanentJobError(
            `refund of ${req.amount} exceeds what is left to refund on payment ${req.paymentId} (${left} of ${charge.amount})`,
            "REFUND_EXCEEDS_CHARGE",
          );
        }
        call.signal.throwIfAborted();
        const { row, replayed } = await record(tx, call, {
          kind: "refund",
          payment_id: req.paymentId,
          charge_reference: req.charge,
          amount: req.amount,
          currency: req.currency,
          details: req.reason ? { reason: req.reason } : {},
        });
        return result(row, replayed);
      });
    },

    async mint(req: MintRequest, call: MoneyCall) {
      const result = (row: LedgerRow, replayed: boolean): ProviderResult => ({
        tokenId: row.reference,
        txHash: row.details.txHash,
        recipientWallet: row.details.recipientWallet,
        provider: "sandbox",
        replayed,
        createdAt: row.created_at.toISOString(),
      });
      const done = await earlier(call);
      if (done) return result(done, true);
      await wait(call);
      const { row, replayed } = await record(undefined, call, {
        kind: "mint",
        payment_id: null,
        amount: null,
        currency: null,
        details: {
          ticketId: req.ticketId,
          orderId: req.orderId,
          recipientWallet: req.recipientWallet,
          metadataUri: req.metadataUri,
          txHash: `0x${createHash("sha256").update(`tx:${call.idempotencyKey}`).digest("hex")}`,
        },
      });
      return result(row, replayed);
    },
  };
}
