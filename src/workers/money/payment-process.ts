/**
 * `payment:process`: charges a customer's payment method once per job line (`root_job_id`).
 */
import { z } from "zod";
import type { JobTypeDefinition } from "../../engine/registry.js";
import type { PaymentProvider } from "../../providers/money-providers.js";
import type { Processor } from "../processor.js";
import { providerSpan } from "../../telemetry/spans.js";
import { currencyCode, externalId, minorUnits } from "../payload-fields.js";

/** The payload of `payment:process`. */
export const paymentPayload = z.strictObject({
  paymentId: externalId,
  orderId: externalId,
  customerId: externalId,
  amount: minorUnits,
  currency: currencyCode,
  /** A card token; see the sandbox's test cards in the README. */
  paymentMethod: externalId,
});

export type PaymentPayload = z.infer<typeof paymentPayload>;

/** The `payment:process` job type. */
export const paymentProcess: JobTypeDefinition<PaymentPayload> = {
  type: "payment:process",
  queue: "money",
  payload: paymentPayload,
};

/** Charges through the configured payment provider, once per job line. */
export function paymentProcessor(provider: PaymentProvider): Processor<PaymentPayload> {
  return {
    definition: paymentProcess,
    process: (ctx) =>
      providerSpan(`${provider.name}.charge`, { "provider.name": provider.name, "job.root_id": ctx.rootJobId }, () =>
        provider.charge(ctx.payload, { rootJobId: ctx.rootJobId, jobId: ctx.id, attempt: ctx.attempt, signal: ctx.signal })),
  };
}
