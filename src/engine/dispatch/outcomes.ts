/**
 * What the end of an attempt means for its job: the one decision table of the workers, a pure
 * function (docs/engine.md, "Outcomes"), the same for in-process and external workers.
 */
import { JobStopped, PermanentJobError, type StopReason } from "../processor.js";

/** Longest stored error message. */
export const MAX_ERROR_MESSAGE = 1000;

/** A failure as stored in the job's output (never a stack). */
export interface StoredFailure {
  message: string;
  reason: string;
  retryable: boolean;
  attempt: number;
  occurredAt: string;
}

/** What to record for an attempt that ended. */
export type AttemptOutcome =
  | { kind: "completed"; result: Record<string, unknown> }
  /** The attempt no longer owns the job (its lease was lost): record nothing. */
  | { kind: "lease-lost" }
  | { kind: "cancelled"; failure: StoredFailure }
  /** `permanent`: no retry whatever the policy; `lastAttempt`: no retry left by the policy. */
  | { kind: "failed"; failure: StoredFailure; permanent: boolean; lastAttempt: boolean };

/** How an attempt ended. */
export interface AttemptEnd {
  /** The handler's result; or `error`, when it threw. */
  result?: Record<string, unknown>;
  error?: unknown;
  threw: boolean;
  /** Why the attempt's signal fired, if it did. */
  stop?: StopReason;
  /** Whether the handler said its side effect had begun. */
  sideEffect: boolean;
  /** 1 for the first attempt. */
  attempt: number;
  retryCount: number;
  retryLimit: number;
  at: Date;
}

/** A failure to store: the message cut at {@link MAX_ERROR_MESSAGE} characters. */
export function storedFailure(message: string, reason: string, retryable: boolean, attempt: number, at: Date): StoredFailure {
  return {
    message: message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE)}...` : message,
    reason,
    retryable,
    attempt,
    occurredAt: at.toISOString(),
  };
}

/** The reason a stop's signal carries, when the attempt was stopped. */
export function stopReasonOf(signal: AbortSignal): StopReason | undefined {
  return signal.aborted && signal.reason instanceof JobStopped ? signal.reason.reason : undefined;
}

/**
 * Decides the outcome:
 * - returned: completed (unless the lease was lost meanwhile: then nothing is recorded);
 * - lease lost: nothing (another attempt owns the job now);
 * - stopped on a cancel request before its side effect began, and not a permanent failure: cancelled;
 * - a PermanentJobError: failed for good, whatever retries are left;
 * - anything else (a RetryableJobError, a timeout, a bug, an expiry, a shutdown): failed, retried by
 *   the policy while retries are left.
 */
export function outcomeOf(end: AttemptEnd): AttemptOutcome {
  if (end.stop === "lease-lost") return { kind: "lease-lost" };
  if (!end.threw) return { kind: "completed", result: end.result ?? {} };
  const err = end.error;
  const message = err instanceof Error ? err.message : String(err);
  if (end.stop === "cancel-requested" && !end.sideEffect && !(err instanceof PermanentJobError)) {
    return { kind: "cancelled", failure: storedFailure("cancelled while running, before its side effect", "CANCELLED", false, end.attempt, end.at) };
  }
  if (err instanceof PermanentJobError) {
    return { kind: "failed", failure: storedFailure(message, err.reason, false, end.attempt, end.at), permanent: true, lastAttempt: true };
  }
  const reason =
    end.stop === "expired"
      ? "JOB_EXPIRED"
      : end.stop === "shutting-down"
        ? "INTERRUPTED"
        : (((err as { reason?: unknown } | undefined)?.reason as string | undefined) ?? "ERROR");
  return {
    kind: "failed",
    failure: storedFailure(message, reason, true, end.attempt, end.at),
    permanent: false,
    lastAttempt: end.retryCount >= end.retryLimit,
  };
}
