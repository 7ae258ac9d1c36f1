/**
 * The one translator from engine and database errors to gRPC status codes. Clients never see
 * UNKNOWN or a stack trace: an unexpected error is INTERNAL with the request id, and its cause is
 * logged here.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "../../gen/google/rpc/error_details_pb.js";
import { isDatabaseUnavailable } from "../db/errors.js";
import {
  AlreadyExistsError,
  FailedPreconditionError,
  InternalError,
  NotFoundError,
  OutOfRangeError,
  PermissionError,
  ResourceExhaustedError,
  UnavailableError,
  ValidationError,
} from "../engine/index.js";
import type { Logger } from "../logger.js";

/** The ErrorInfo domain of this service's errors. */
export const ERROR_DOMAIN = "queue-service";

/** Translates any error into a ConnectError a client may see. */
export function toConnectError(err: unknown, logger: Logger, requestId?: string): ConnectError {
  if (err instanceof ConnectError) {
    if (err.code === Code.Unknown) return internal(err, logger, requestId);
    return err;
  }
  if (err instanceof ValidationError) {
    return new ConnectError(err.message, Code.InvalidArgument, undefined, [
      {
        desc: BadRequestSchema,
        value: create(BadRequestSchema, { fieldViolations: err.violations.map((v) => ({ field: v.field, description: v.description, reason: v.reason })) }),
      },
    ]);
  }
  if (err instanceof NotFoundError) return new ConnectError(err.message, Code.NotFound);
  if (err instanceof PermissionError) return new ConnectError(err.message, Code.PermissionDenied);
  if (err instanceof FailedPreconditionError) {
    const details = err.reason
      ? [{ desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: err.reason, domain: ERROR_DOMAIN, metadata: err.metadata }) }]
      : [];
    return new ConnectError(err.message, Code.FailedPrecondition, undefined, details);
  }
  if (err instanceof OutOfRangeError) return new ConnectError(err.message, Code.OutOfRange);
  if (err instanceof UnavailableError) return new ConnectError(err.message, Code.Unavailable);
  if (err instanceof AlreadyExistsError) {
    return new ConnectError(err.message, Code.AlreadyExists, undefined, [
      { desc: ErrorInfoSchema, value: create(ErrorInfoSchema, { reason: err.reason, domain: ERROR_DOMAIN, metadata: err.metadata }) },
    ]);
  }
  if (err instanceof ResourceExhaustedError) {
    const details =
      err.retryAfterMs === undefined
        ? []
        : [{ desc: RetryInfoSchema, value: create(RetryInfoSchema, { retryDelay: durationFromMs(Math.max(1, Math.ceil(err.retryAfterMs))) }) }];
    return new ConnectError(err.message, Code.ResourceExhausted, undefined, details);
  }
  if (err instanceof InternalError) return internal(err, logger, requestId);
  if (isDatabaseUnavailable(err)) {
    logger.warn({ err: (err as Error).message, requestId }, "database unavailable");
    return new ConnectError("the database is unavailable; retry shortly", Code.Unavailable);
  }
  const pgCode = (err as { code?: string }).code;
  if (pgCode === "23505") return new ConnectError("already exists", Code.AlreadyExists);
  if (pgCode === "40001" || pgCode === "40P01") return new ConnectError("conflicting concurrent change; retry", Code.Aborted);
  // Text PostgreSQL cannot store (a NUL, an unpaired surrogate): validation stops these first; this is
  // the backstop for any field it missed, without echoing the value.
  if (pgCode === "22P05" || pgCode === "22021") {
    logger.warn({ err, requestId }, "text the database cannot store reached a query");
    return new ConnectError("a text field holds a character that cannot be stored (NUL, or an unpaired UTF-16 surrogate)", Code.InvalidArgument);
  }
  if (pgCode === "57014") return new ConnectError("the operation took too long and was cancelled", Code.DeadlineExceeded);
  if ((err as Error | undefined)?.name === "AbortError") return new ConnectError("cancelled", Code.Canceled);
  return internal(err, logger, requestId);
}

function internal(err: unknown, logger: Logger, requestId?: string): ConnectError {
  logger.error({ err, requestId }, "internal error");
  return new ConnectError(`internal error${requestId ? ` (request id ${requestId})` : ""}`, Code.Internal);
}
