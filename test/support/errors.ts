/**
 * Reading gRPC errors in tests: the code, and the google.rpc details.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { type BadRequest_FieldViolation, BadRequestSchema, type ErrorInfo, ErrorInfoSchema } from "../../gen/google/rpc/error_details_pb.js";

/** Awaits `p`, expecting it to fail; returns the ConnectError. */
export async function failure(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail, but it succeeded");
}

/** The field violations of an INVALID_ARGUMENT error. */
export function violations(err: ConnectError): BadRequest_FieldViolation[] {
  return err.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations);
}

/** The ErrorInfo of an error, if any. */
export function errorInfo(err: ConnectError): ErrorInfo | undefined {
  return err.findDetails(ErrorInfoSchema)[0];
}

export { Code };
