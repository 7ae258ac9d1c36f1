/**
 * The service's registry: its queues and job types.
 */
import { createRegistry, type JobRegistry } from "../engine/registry.js";
import { analyticsAggregate } from "./background/analytics-aggregate.js";
import { emailSend } from "./communication/email-send.js";
import { nftMint } from "./money/nft-mint.js";
import { paymentProcess } from "./money/payment-process.js";
import { refundProcess } from "./money/refund-process.js";
import { queues } from "./queues.js";

/** Every job type of the service. */
export const jobTypes = [paymentProcess, refundProcess, nftMint, emailSend, analyticsAggregate] as const;

/** Builds the service's registry. */
export function serviceRegistry(): JobRegistry {
  return createRegistry(queues, jobTypes);
}
