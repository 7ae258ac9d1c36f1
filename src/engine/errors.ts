/**
 * The engine's errors. Plain classes with type guards, no transport types: the RPC layer turns
 * them into gRPC codes in one place (rpc/errors.ts).
 */

/** One invalid field of a request. */
export interface FieldViolation {
  /** Path of the field, e.g. `payload.amount` or `jobs[3].options.retry_limit`. */
  field: string;
  /** What is wrong, readable. */
  description: string;
  /** A stable UPPER_SNAKE_CASE rule name, e.g. `REQUIRED`, `TOO_LARGE`. */
  reason: string;
}

/** The request is invalid; nothing was changed. */
export class ValidationError extends Error {
  override name = "ValidationError";
  constructor(
    readonly violations: FieldViolation[],
    message?: string,
  ) {
    super(message ?? summarise(violations));
  }
}

function summarise(violations: FieldViolation[]): string {
  const shown = violations.slice(0, 3).map((v) => `${v.field}: ${v.description}`);
  const more = violations.length > 3 ? ` (and ${violations.length - 3} more)` : "";
  return `invalid request: ${shown.join("; ")}${more}`;
}

/** The caller's role allows the call, but not on this thing (e.g. a job type whose workers list leaves it out). */
export class PermissionError extends Error {
  override name = "PermissionError";
}

/** The named thing does not exist (or is not visible to the caller). */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** The operation does not apply in the current state (with a machine-readable reason when one helps, e.g. `LEASE_LOST`). */
export class FailedPreconditionError extends Error {
  override name = "FailedPreconditionError";
  constructor(
    message: string,
    readonly reason?: string,
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A conflict with something that exists, with a machine-readable reason. */
export class AlreadyExistsError extends Error {
  override name = "AlreadyExistsError";
  constructor(
    message: string,
    readonly reason: string,
    readonly metadata: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A limit was reached; the caller may retry after `retryAfterMs` when given. */
export class ResourceExhaustedError extends Error {
  override name = "ResourceExhaustedError";
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
  }
}

/** The service cannot serve this now (starting, stopping, database unreachable). */
export class UnavailableError extends Error {
  override name = "UnavailableError";
}

/** A cursor or window beyond what is kept. */
export class OutOfRangeError extends Error {
  override name = "OutOfRangeError";
}

/** A required record of the engine is missing or corrupt (a bug or tampering), not the caller's fault. */
export class InternalError extends Error {
  override name = "InternalError";
}
