/**
 * A job to add, validated and resolved against its queue's policy (the RPC layer builds it from
 * the request).
 */
import type { RegisteredJobType } from "./registry.js";

/** A validated job to add. */
export interface NewJob {
  type: RegisteredJobType;
  payload: Record<string, unknown>;
  priority: number;
  /** An absolute start time; unset: `delayMs` after the enqueue. */
  startAt?: Date;
  delayMs: number;
  retryLimit: number;
  retryDelaySeconds: number;
  retryBackoff: boolean;
  expireInSeconds: number;
  idempotencyKey?: string;
  /** Fingerprint of the request as the client sent it (type, payload, options). */
  requestHash: Buffer;
  traceparent?: string;
}
