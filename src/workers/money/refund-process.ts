/**
 * `refund:process`: refunds (part of) a payment, never more than was charged on it.
 */
import { z } from "zod";
import type { JobTypeDefinition } from "../../engine/registry.js";
import type { PaymentProvider } from "../../providers/money-providers.js";
import type { Processor } from "../processor.js";
import { providerSpan } from "../../telemetry/spans.js";
import { currencyCode, externalId, minorUnits } from "../payload-fields.js";

/** The payload of `refund:process`. */
export const refundPayload = z.strictObject({
  paymentId: externalId,
  amount: minorUnits,
  currency: currencyCode,
  reason: z.string().min(1, "must not be empty").max(500, "must be at most 500 characters").optional(),
});

export type RefundPayload = z.infer<typeof refundPayload>;

/** The `refund:process` job type. */
export const refundProcess: JobTypeDefinition<RefundPayload> = {
  type: "refund:process",
  queue: "money",
  payload: refundPayload,
};

/** Refunds through the configured payment provider, once per job line. */
export function refundProcessor(provider: PaymentProvider): Processor<RefundPayload> {
  return {
    definition: refundProcess,
    process: (ctx) =>
      providerSpan(`${provider.name}.refund`, { "provider.name": provider.name, "job.root_id": ctx.rootJobId }, () =>
        provider.refund(ctx.payload, { rootJobId: ctx.rootJobId, jobId: ctx.id, attempt: ctx.attempt, signal: ctx.signal })),
  };
}
