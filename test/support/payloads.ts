/**
 * Valid payloads of every job type, for tests to start from.
 */
import { randomUUID } from "node:crypto";

export const payment = (over: Record<string, unknown> = {}) => ({
  // Whole UUIDs: a payment is charged once per paymentId, so two jobs of one test must never share one.
  paymentId: `pay_${randomUUID()}`,
  orderId: "ord_1",
  customerId: "cus_1",
  amount: 1299,
  currency: "USD",
  paymentMethod: "tok_visa",
  ...over,
});

export const refund = (over: Record<string, unknown> = {}) => ({ paymentId: "pay_1", amount: 500, currency: "EUR", reason: "damaged", ...over });

export const nftMint = (over: Record<string, unknown> = {}) => ({
  ticketId: "tkt_1",
  orderId: "ord_1",
  recipientWallet: "0x52908400098527886E0F7030069857D2E4169EE7",
  metadataUri: "ipfs://bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
  ...over,
});

export const email = (over: Record<string, unknown> = {}) => ({ to: ["ada@example.com"], subject: "Your receipt", text: "Thanks!", ...over });

export const analytics = (over: Record<string, unknown> = {}) => ({ bucket: "minute", ...over });

/** One valid AddJob request per job type. */
export const validRequests = () => [
  { type: "payment:process", payload: payment() },
  { type: "refund:process", payload: refund() },
  { type: "nft:mint", payload: nftMint() },
  { type: "email:send", payload: email() },
  { type: "analytics:aggregate", payload: analytics() },
];
