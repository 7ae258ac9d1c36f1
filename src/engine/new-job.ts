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
  /** Parents by job id (at most 100 with `dependsOnIndexes`). */
  dependsOn?: string[];
  /** Parents among the earlier entries of the same batch (AddJobs). */
  dependsOnIndexes?: number[];
  /** What a parent's failure does (default: cancel). */
  onParentFailure?: "cancel" | "run";
  /** Jobs with the same key run at most the queue's `keyConcurrency` at once. */
  concurrencyKey?: string;
}

/** Whether a job names parents. */
export const hasParents = (job: NewJob): boolean => (job.dependsOn?.length ?? 0) + (job.dependsOnIndexes?.length ?? 0) > 0;

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
