/**
 * A job to add, validated and resolved against its queue's policy (the RPC layer builds it from
 * the request).
 */
import { fingerprint } from "./fingerprint.js";
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
  /** Fingerprint of the request as the client sent it (type, payload, options); set with a key. */
  requestHash?: Buffer;
  traceparent?: string;
}

/** A job the service adds itself (e.g. an alert's email), with its queue's policy and an idempotency key. */
export function systemJob(type: RegisteredJobType, payload: Record<string, unknown>, idempotencyKey: string): NewJob {
  const p = type.queueDefinition.policy;
  return {
    type,
    payload,
    priority: p.priority,
    delayMs: 0,
    retryLimit: p.retryLimit,
    retryDelaySeconds: p.retryDelaySeconds,
    retryBackoff: p.retryBackoff,
    expireInSeconds: p.expireInSeconds,
    idempotencyKey,
    requestHash: fingerprint({ type: type.type, payload, idempotencyKey }),
  };
}
