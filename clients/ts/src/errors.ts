/**
 * Reading the service's errors: the field violations of INVALID_ARGUMENT and the retry delay of
 * RESOURCE_EXHAUSTED, from their google.rpc details.
 */
import { ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";

/** One invalid field: its path (e.g. `payload.amount`), the rule it broke, and a reason code. */
export interface FieldViolation {
  field: string;
  description: string;
  reason: string;
}

/** The field violations of an error (empty if it has none). */
export function fieldViolations(err: unknown): FieldViolation[] {
  return ConnectError.from(err)
    .findDetails(BadRequestSchema)
    .flatMap((d) => d.fieldViolations.map(({ field, description, reason }) => ({ field, description, reason })));
}

/** How long the service asked the caller to wait before trying again, if it did. */
export function retryDelayMs(err: unknown): number | undefined {
  const delay = ConnectError.from(err).findDetails(RetryInfoSchema)[0]?.retryDelay;
  return delay === undefined ? undefined : Number(delay.seconds) * 1000 + Math.round(delay.nanos / 1e6);
}
