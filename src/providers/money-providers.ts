/**
 * What the money processors need from a payment gateway and a mint service, whichever provider
 * (sandbox or HTTP) serves them. Every call carries an idempotency key derived from the operation's
 * business key (a payment, a mint, a refund: see src/workers/money/money-operations.ts), so every
 * attempt and every job that repeats the operation sends the same key.
 */
import { createHash } from "node:crypto";

/** One provider call of one attempt. */
export interface MoneyCall {
  /** The operation's idempotency key: the same for every attempt and every job repeating it. */
  idempotencyKey: string;
  /**
   * Keys an earlier attempt may already have sent this operation under (its answer is unknown):
   * the provider looks each up before sending, so an operation older than the provider's own
   * idempotency window is still not repeated.
   */
  lookupKeys: readonly string[];
  /** The principal the operation belongs to (the merchant account, for a gateway with several). */
  account: string;
  /** The job of this attempt, and its line: for the provider's records (metadata), never a key. */
  jobId: string;
  rootJobId: string;
  attempt: number;
  /** Fires when the job should stop; honoured until {@link MoneyCall.sending} is called. */
  signal: AbortSignal;
  /**
   * Called by the provider right before the request leaves (after its last look at the signal):
   * from then on the attempt is never recorded CANCELLED; it ends as the provider answers, or is
   * retried with the same key when the answer is unknown.
   */
  sending(): void;
}

export interface ChargeRequest {
  paymentId: string;
  orderId: string;
  customerId: string;
  amount: number;
  currency: string;
  paymentMethod: string;
}

export interface RefundRequest {
  paymentId: string;
  /** The provider's reference of the charge being refunded (from the charge's result). */
  charge: string;
  amount: number;
  currency: string;
  reason?: string;
}

export interface MintRequest {
  ticketId: string;
  orderId: string;
  recipientWallet: string;
  metadataUri: string;
}

/** A provider's answer, stored as the job's result. */
export type ProviderResult = Record<string, unknown>;

/** Charges and refunds. */
export interface PaymentProvider {
  readonly name: string;
  charge(req: ChargeRequest, call: MoneyCall): Promise<ProviderResult>;
  refund(req: RefundRequest, call: MoneyCall): Promise<ProviderResult>;
  /** The provider's reference of a charge, read from the charge's result (refunds name it). */
  chargeReference(result: ProviderResult): string | undefined;
}

/** NFT mints. */
export interface MintProvider {
  readonly name: string;
  mint(req: MintRequest, call: MoneyCall): Promise<ProviderResult>;
}

/** The kinds of money operation. */
export type MoneyKind = "charge" | "refund" | "mint";

/**
 * The idempotency key of an operation: `queue-service:<kind>:v2:<hash>`, the hash of the principal
 * and the business key (so neither reaches the provider, and the key stays short whatever the ids).
 */
export function idempotencyKeyFor(kind: MoneyKind, principal: string, businessKey: string): string {
  const hash = createHash("sha256").update(`${principal}\n${businessKey}`).digest("hex").slice(0, 40);
  return `queue-service:${kind}:v2:${hash}`;
}

/** The key the service sent before keys were derived from business keys: one per job line. */
export function lineIdempotencyKey(kind: MoneyKind, rootJobId: string): string {
  return `queue-service:${kind}:${rootJobId}`;
}
