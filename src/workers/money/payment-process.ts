/**
 * `payment:process`: charges a customer's payment method once per payment: the business key is
 * (principal, `paymentId`), whatever the number of jobs, attempts and redrives.
 */
import { z } from "zod";
import type { Processor } from "../../engine/processor.js";
import type { JobTypeDefinition } from "../../engine/registry.js";
import type { PaymentProvider } from "../../providers/money-providers.js";
import { providerSpan } from "../../telemetry/spans.js";
import { currencyCode, externalId, minorUnits } from "../payload-fields.js";
import type { MoneyOperations } from "./money-operations.js";

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

/** Charges through the configured payment provider, once per (principal, paymentId). */
export function paymentProcessor(provider: PaymentProvider, operations: MoneyOperations): Processor<PaymentPayload> {
  return {
    definition: paymentProcess,
    process: (ctx) => {
      const p = ctx.payload;
      return providerSpan(`${provider.name}.charge`, { "provider.name": provider.name, "job.root_id": ctx.rootJobId }, () =>
        operations.perform(
          ctx,
          {
            kind: "charge",
            key: p.paymentId,
            label: `payment ${p.paymentId}`,
            terms: { amount: p.amount, currency: p.currency, customerId: p.customerId, paymentMethod: p.paymentMethod, orderId: p.orderId },
            payment: { paymentId: p.paymentId, amount: p.amount, currency: p.currency },
          },
          (call) => provider.charge(p, call),
        ),
      );
    },
  };
}
