/**
 * The payload of each job type, as the service validates it (camelCase keys; unknown keys are
 * rejected). Amounts are in minor units (cents). The server's schemas are the source of truth: a
 * type test in the service's repository fails when these drift from them.
 */

/** `payment:process`: charge a payment method. */
export type PaymentPayload = {
  paymentId: string;
  orderId: string;
  customerId: string;
  /** Minor units (1299 = 12.99), greater than 0. */
  amount: number;
  /** ISO 4217, upper case, e.g. `USD`. */
  currency: string;
  /** A card token from the payment provider (the sandbox's test tokens: see the README). */
  paymentMethod: string;
};

/** `refund:process`: refund (part of) a payment. */
export type RefundPayload = {
  paymentId: string;
  /** Minor units, greater than 0, at most what is left of the payment's charge. */
  amount: number;
  currency: string;
  reason?: string;
  /** Names the refund: at most one refund per refundId (1-200 printable ASCII characters). The
   *  client's `addRefund` sets a random one when none is given, so its own retries refund once. */
  refundId?: string;
};

/** `nft:mint`: mint a ticket's NFT to a wallet. */
export type NftMintPayload = {
  ticketId: string;
  orderId: string;
  /** `0x` followed by 40 hex digits. */
  recipientWallet: string;
  /** An `https://` or `ipfs://` URI. */
  metadataUri: string;
};

/** `email:send`: one message, sent over SMTP (at least once). At least one of `text` and `html`. */
export type EmailPayload = {
  /** One address or 1 to 50 of them. */
  to: string | string[];
  /** One line, at most 998 characters. */
  subject: string;
  text?: string;
  html?: string;
  replyTo?: string;
};

/** `analytics:aggregate`: roll job activity up (normally run by the service's own schedule). */
export type AnalyticsAggregatePayload = {
  /** RFC 3339 timestamps; `from` before `to`. */
  from?: string;
  to?: string;
  bucket?: "minute" | "hour";
};

/** Every job type and its payload. */
export interface JobPayloads {
  "payment:process": PaymentPayload;
  "refund:process": RefundPayload;
  "nft:mint": NftMintPayload;
  "email:send": EmailPayload;
  "analytics:aggregate": AnalyticsAggregatePayload;
}

/** A registered job type. */
export type JobType = keyof JobPayloads;
