/**
 * `refund:process`: refunds (part of) a payment its principal charged (an admin may refund any),
 * never more than was charged on it; once per (principal, `refundId`), or per job line without one.
 */
import { z } from "zod";
import type { Processor } from "../../engine/processor.js";
import { PermanentJobError } from "../../engine/processor.js";
import type { JobTypeDefinition } from "../../engine/registry.js";
import type { PaymentProvider } from "../../providers/money-providers.js";
import { providerSpan } from "../../telemetry/spans.js";
import { currencyCode, externalId, minorUnits } from "../payload-fields.js";
import type { MoneyOperations } from "./money-operations.js";

/** The payload of `refund:process`. */
export const refundPayload = z.strictObject({
  paymentId: externalId,
  amount: minorUnits,
  currency: currencyCode,
  reason: z.string().min(1, "must not be empty").max(500, "must be at most 500 characters").optional(),
  /** Names the refund: at most one refund per (principal, refundId), whatever is repeated. */
  refundId: externalId.optional(),
});

export type RefundPayload = z.infer<typeof refundPayload>;

/** The `refund:process` job type. */
export const refundProcess: JobTypeDefinition<RefundPayload> = {
  type: "refund:process",
  queue: "money",
  payload: refundPayload,
};

/** Refunds through the configured payment provider, once per (principal, refundId) or job line. */
export function refundProcessor(provider: PaymentProvider, operations: MoneyOperations): Processor<RefundPayload> {
  return {
    definition: refundProcess,
    process: (ctx) => {
      const p = ctx.payload;
      return providerSpan(`${provider.name}.refund`, { "provider.name": provider.name, "job.root_id": ctx.rootJobId }, () =>
        operations.perform(
          ctx,
          {
            kind: "refund",
            key: p.refundId ?? `line:${ctx.rootJobId}`,
            label: p.refundId ? `refund ${p.refundId}` : "this refund",
            terms: { paymentId: p.paymentId, amount: p.amount, currency: p.currency },
            payment: { paymentId: p.paymentId, amount: p.amount, currency: p.currency },
          },
          (call, held) => {
            const charge = held.charge && provider.chargeReference(held.charge);
            if (!charge) throw new PermanentJobError(`payment ${p.paymentId}'s charge has no ${provider.name} reference to refund`, "CHARGE_REFERENCE_MISSING");
            return provider.refund({ paymentId: p.paymentId, charge, amount: p.amount, currency: p.currency, reason: p.reason }, call);
          },
        ),
      );
    },
  };
}
