/**
 * Money moves once per business key, whatever clients repeat: a charge per (principal, paymentId), a
 * mint per (principal, ticketId), a refund per (principal, refundId), or per job line when a refund
 * names none. Each operation is a row (`money_operation`) claimed before the provider is called:
 *
 * - The first job to try an operation fixes its terms. A repeat (another job, a redrive, RetryJob)
 *   with the same terms gets the first one's result without calling the provider; with other terms
 *   it fails permanently (TERMS_CONFLICT), nothing moved.
 * - One attempt at a time holds an operation. While the holder runs, another job's attempt waits for
 *   a retry (`*_IN_PROGRESS`, retryable): two calls for one payment never run side by side. A holder
 *   that no longer runs (it failed, its worker died) is taken over, and the provider is asked first
 *   whether the earlier attempt's call went through (its answer was unknown).
 * - Every call carries the idempotency key of the business key, so even a call repeated by a worker
 *   that lost its lease is one effect at the provider.
 * - Refunds belong to the payer: a refund names a payment its own principal charged through the
 *   service (an admin may refund anyone's); anyone else's payment does not exist for it (no amount,
 *   customer or principal of another in any message). The refunds of a payment, pending or done,
 *   never add up to more than its charge: they are decided one at a time under the charge's row lock.
 */
import type { Pool, PoolClient, Queryable } from "../../db/pool.js";
import { inTransaction } from "../../db/pool.js";
import { createBatcher } from "../../db/statement-batcher.js";
import { type JobContext, PermanentJobError, RetryableJobError } from "../../engine/processor.js";
import { idempotencyKeyFor, lineIdempotencyKey, type MoneyCall, type MoneyKind, type ProviderResult } from "../../providers/money-providers.js";
import type { Holder, MoneyOperationQueries, NewOperation, OperationKey, OperationRow } from "./money-operation-queries.js";

/** An operation a job asks for. */
export interface MoneyOperation {
  kind: MoneyKind;
  /** The business key, within the job's principal. */
  key: string;
  /** What the operation does; a repeat must ask for the same (compared field by field). */
  terms: Record<string, string | number>;
  /** For an error message: what the key names, e.g. `payment pay_1`. */
  label: string;
  /** Charges and refunds: the payment charged or refunded, and the amount. */
  payment?: { paymentId: string; amount: number; currency: string };
}

/** What the provider call of a refund needs: the charge refunded. */
export interface HeldOperation {
  /** The refunded charge's provider result. */
  charge?: ProviderResult;
}

export interface MoneyOperationDeps {
  pool: Pool;
  queries: MoneyOperationQueries;
  /** Whether this attempt of a job is still running somewhere (its row is active with this retry count). */
  attemptRunning(db: Queryable, jobId: string, retryCount: number): Promise<boolean>;
}

/** What an attempt does: replay an earlier result, or send (`fresh`: no earlier attempt can have sent it). */
type Claim = { outcome: "replay"; result: ProviderResult } | { outcome: "send"; fresh: boolean; charge?: OperationRow };

const codes: Record<MoneyKind, string> = { charge: "PAYMENT", refund: "REFUND", mint: "MINT" };

/** The field-by-field differences of two sets of terms, for a message. */
function differences(first: Record<string, unknown>, asked: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(first), ...Object.keys(asked)])].sort();
  return keys.filter((k) => first[k] !== asked[k]).map((k) => `${k} ${JSON.stringify(first[k] ?? null)}, not ${JSON.stringify(asked[k] ?? null)}`);
}

/** Most operations one statement claims or records. */
const BATCH_MAX = 500;

/** The money operations of an installation. */
export function createMoneyOperations(deps: MoneyOperationDeps) {
  const { pool, queries } = deps;

  // Claims and successes of concurrent attempts share statements: while one runs, the next gathers.
  const claimFresh = createBatcher({ maxBatch: BATCH_MAX, concurrency: 2, run: (items: NewOperation[]) => queries.createMany(pool, items) });
  const recordSuccess = createBatcher({
    maxBatch: BATCH_MAX,
    concurrency: 2,
    run: async (done: Parameters<MoneyOperationQueries["succeed"]>[1]) => {
      await queries.succeed(pool, done);
      return done.map(() => undefined);
    },
  });

  /** For a refund: the payment's charge, checked against the refund (ownership, currency, what is left). */
  async function chargeToRefund(tx: PoolClient, ctx: JobContext<unknown>, op: MoneyOperation): Promise<{ charge: OperationRow }> {
    const r = op.payment!;
    const charges = await queries.charges(tx, r.paymentId, ctx.principal, ctx.admin);
    const charge = charges[0]?.principal === ctx.principal || charges.length === 1 ? charges[0] : undefined;
    if (!charge && charges.length > 1) {
      throw new PermanentJobError(
        `payment ${r.paymentId} was charged by several principals (${charges.map((c) => c.principal).join(", ")}, ...); refund it as its payer`,
        "PAYMENT_AMBIGUOUS",
      );
    }
    // Someone else's payment does not exist for a service principal: the same answer as none at all.
    if (!charge || charge.state === "failed") throw new PermanentJobError(`payment ${r.paymentId} has no charge to refund`, "PAYMENT_NOT_FOUND");
    if (charge.state === "pending") throw new RetryableJobError(`payment ${r.paymentId} has no completed charge yet; retrying`, "PAYMENT_NOT_SETTLED");
    if (charge.currency !== r.currency)
      throw new PermanentJobError(`payment ${r.paymentId} was charged in ${charge.currency}, not ${r.currency}`, "CURRENCY_MISMATCH");
    const left = Number(charge.amount) - (await queries.refunded(tx, charge.principal, r.paymentId));
    if (r.amount > left) {
      throw new PermanentJobError(
        `refund of ${r.amount} exceeds what is left to refund on payment ${r.paymentId} (${left} of ${charge.amount})`,
        "REFUND_EXCEEDS_CHARGE",
      );
    }
    return { charge };
  }

  /** Decides, in one transaction, what this attempt does with the operation. */
  async function claim(tx: PoolClient, ctx: JobContext<unknown>, op: MoneyOperation, k: OperationKey, me: Holder): Promise<Claim> {
    const existing = await queries.lock(tx, k);
    if (!existing) {
      const { charge } = op.kind === "refund" ? await chargeToRefund(tx, ctx, op) : { charge: undefined };
      const payment = op.payment ? { payer: charge?.principal ?? ctx.principal, ...op.payment } : undefined;
      const created = await queries.create(tx, k, op.terms, me, payment);
      // A concurrent first attempt created it meanwhile: decide against its row.
      if (!created) return claim(tx, ctx, op, k, me);
      return { outcome: "send", fresh: true, charge };
    }
    const diff = differences(existing.terms, op.terms);
    if (diff.length > 0) {
      throw new PermanentJobError(
        `${op.label} was first requested with other terms (${diff.join("; ")}); nothing was done`,
        `${codes[op.kind]}_TERMS_CONFLICT`,
      );
    }
    if (existing.state === "succeeded") return { outcome: "replay", result: { ...existing.result, replayed: true, originalJobId: existing.job_id } };
    const mine = existing.job_id === me.jobId && existing.retry_count === me.retryCount;
    if (existing.state === "pending" && !mine && existing.job_id !== me.jobId && (await deps.attemptRunning(tx, existing.job_id, existing.retry_count))) {
      throw new RetryableJobError(`${op.label} is being processed by job ${existing.job_id} right now; retrying`, `${codes[op.kind]}_IN_PROGRESS`);
    }
    // A failed refund no longer counts against its payment: it is checked again before it is retried.
    let charge: OperationRow | undefined;
    if (op.kind === "refund") {
      charge =
        existing.state === "failed"
          ? (await chargeToRefund(tx, ctx, op)).charge
          : (await queries.charges(tx, op.payment!.paymentId, existing.payer ?? ctx.principal, false))[0];
    }
    await queries.takeOver(tx, k, me);
    return { outcome: "send", fresh: false, charge };
  }

  return {
    /**
     * Performs `op` for the job once per business key: `send` calls the provider with the call's
     * idempotency key, unless an earlier job already did it (its result is returned, marked
     * `replayed` with `originalJobId`).
     */
    async perform(
      ctx: JobContext<unknown>,
      op: MoneyOperation,
      send: (call: MoneyCall, held: HeldOperation) => Promise<ProviderResult>,
    ): Promise<ProviderResult> {
      const k: OperationKey = { kind: op.kind, principal: ctx.principal, key: op.key };
      const me: Holder = { jobId: ctx.id, retryCount: ctx.attempt - 1 };
      ctx.signal.throwIfAborted();
      // The common case first: nobody asked for this charge or mint before, and one statement claims
      // it. Refunds, and keys that exist, are decided in a transaction.
      const created =
        op.kind !== "refund" && (await claimFresh({ key: k, terms: op.terms, holder: me, payment: op.payment && { payer: ctx.principal, ...op.payment } }));
      const decided: Claim = created ? { outcome: "send", fresh: true } : await inTransaction(pool, (tx) => claim(tx, ctx, op, k, me));
      if (decided.outcome === "replay") return decided.result;
      // An earlier attempt may have sent it (its answer unknown): this attempt must find out, not be
      // recorded CANCELLED as if nothing had happened.
      if (!decided.fresh) ctx.beginSideEffect();
      const idempotencyKey = idempotencyKeyFor(op.kind, ctx.principal, op.key);
      const firstOfLine = ctx.attempt === 1 && ctx.id === ctx.rootJobId;
      // Jobs of a line that began before keys came from business keys may have sent under the line's key.
      const lookupKeys = decided.fresh ? (firstOfLine ? [] : [lineIdempotencyKey(op.kind, ctx.rootJobId)]) : [idempotencyKey];
      const call: MoneyCall = {
        idempotencyKey,
        lookupKeys,
        // A refund goes to the payer's account (an admin may refund another principal's payment).
        account: decided.charge?.principal ?? ctx.principal,
        jobId: ctx.id,
        rootJobId: ctx.rootJobId,
        attempt: ctx.attempt,
        signal: ctx.signal,
        sending: () => ctx.beginSideEffect(),
      };
      try {
        const result = await send(call, { charge: decided.charge?.result ?? undefined });
        // Should this fail, the operation stays pending: a repeat takes it over and the provider
        // answers for the key, so recording it is what spares repeats a provider call, not what
        // keeps money moving once.
        await recordSuccess({ key: k, holder: me, result });
        return result;
      } catch (err) {
        if (err instanceof PermanentJobError) await queries.fail(pool, k, me, { message: err.message, reason: err.reason });
        throw err;
      }
    },
  };
}

export type MoneyOperations = ReturnType<typeof createMoneyOperations>;
