/**
 * What the money processors need from a payment gateway and a mint service, whichever provider
 * (sandbox or HTTP) serves them.
 */

/** One provider call of one attempt. */
export interface MoneyCall {
  /** The job line: the key of the side effect (idempotency key, ledger key). */
  rootJobId: string;
  /** This job's own id; differs from `rootJobId` for a redriven job. */
  jobId: string;
  attempt: number;
  /** Fires when the job should stop; honoured until the side effect is under way. */
  signal: AbortSignal;
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
}

/** NFT mints. */
export interface MintProvider {
  readonly name: string;
  mint(req: MintRequest, call: MoneyCall): Promise<ProviderResult>;
}

/** The idempotency key a provider gets for a job line: stable across attempts and redrives. */
export function idempotencyKeyFor(operation: "charge" | "refund" | "mint", rootJobId: string): string {
  return `queue-service:${operation}:${rootJobId}`;
}
