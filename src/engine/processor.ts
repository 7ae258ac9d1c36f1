/**
 * The processor contract: one small module per job type (its payload schema and `process`), and
 * the errors a processor throws to say whether a failure is worth retrying.
 */

import type { Logger } from "../logger.js";
import type { JobTypeDefinition } from "./registry.js";

/** Why a running job's signal fired. */
export type StopReason = "cancel-requested" | "lease-lost" | "expired" | "shutting-down";

/** The signal's reason: tells the worker what to do with the job once the handler stops. */
export class JobStopped extends Error {
  override name = "JobStopped";
  constructor(readonly reason: StopReason) {
    super(
      {
        "cancel-requested": "the job was cancelled",
        "lease-lost": "this worker lost the job's lease",
        expired: "the attempt ran past its expiry",
        "shutting-down": "the worker is shutting down",
      }[reason],
    );
  }
}

/** A failure that will not go away by retrying (a declined card, a rejected request): no retry, dead letter at once. */
export class PermanentJobError extends Error {
  override name = "PermanentJobError";
  /** `reason` is a stable UPPER_SNAKE_CASE code clients can act on, e.g. `CARD_DECLINED`. */
  constructor(
    message: string,
    readonly reason: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** A failure worth retrying (a timeout, a 5xx); any other error thrown is treated the same way. */
export class RetryableJobError extends Error {
  override name = "RetryableJobError";
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

/** One attempt of a job, as its processor sees it. */
export interface JobContext<P> {
  readonly id: string;
  /** The first job of the line: the key of every side effect (providers' idempotency keys, ledgers). */
  readonly rootJobId: string;
  readonly type: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly payload: P;
  /** The principal that added the job. */
  readonly principal: string;
  /** Whether that principal was an admin when it added the job. */
  readonly admin: boolean;
  /**
   * Fires when the job should stop: cancelled by an admin, its lease lost, its expiry reached, or the
   * worker shutting down; `signal.reason` is a {@link JobStopped}.
   */
  readonly signal: AbortSignal;
  /**
   * Says that the irreversible side effect is under way (a provider request is leaving, an email is
   * handed to the server). From then on the attempt is never recorded CANCELLED, whatever the signal
   * says: it completes, or fails and is retried (money calls with the same idempotency key).
   */
  beginSideEffect(): void;
  /**
   * Reports how far the attempt got (0-100, a short note): the job's `progress` and a PROGRESS event
   * (coalesced: at most a few writes per second per job). Never throws; a lost lease shows in `signal`.
   */
  progress(percent: number, message?: string): Promise<void>;
  readonly logger: Logger;
}

/** A job type's processor. */
export interface Processor<P = unknown> {
  readonly definition: JobTypeDefinition<P>;
  /**
   * Does the job's work and returns its result (stored as the job's `result`). Before an irreversible
   * side effect it must stop if the signal has fired (`ctx.signal.throwIfAborted()`), then call
   * `ctx.beginSideEffect()`; once the side effect happened it returns normally, even if the job was
   * cancelled meanwhile.
   */
  process(ctx: JobContext<P>): Promise<Record<string, unknown>>;
}
