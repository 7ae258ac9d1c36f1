/**
 * Requests that change the catalog (queues and job types of your own), read into the engine's
 * inputs: a new queue's policy from the defaults and what the request sets, an update from the
 * current value and the fields its mask names. Every bad field is a violation naming it.
 */
import type { Duration, FieldMask } from "@bufbuild/protobuf/wkt";
import type { JobType, Queue, QueuePolicy as QueuePolicyMessage } from "../../gen/jobs/v1/queue_service_pb.js";
import {
  DEFAULT_POLICY,
  type FieldViolation,
  type JobTypeInput,
  type QueueDefinition,
  type QueueInput,
  type QueuePolicy,
  type RegisteredJobType,
  ValidationError,
} from "../engine/index.js";
import { durationMsOf, requireMask } from "./request-fields.js";

const seconds = (d: Duration | undefined) => (d ? Math.ceil(durationMsOf(d) / 1000) : undefined);

/** Each policy field of the API, and how it sets the engine's policy. */
const POLICY_FIELDS: Record<string, (m: QueuePolicyMessage) => Partial<QueuePolicy>> = {
  retry_limit: (m) => ({ retryLimit: m.retryLimit }),
  retry_delay: (m) => ({ retryDelaySeconds: seconds(m.retryDelay) ?? DEFAULT_POLICY.retryDelaySeconds }),
  retry_backoff: (m) => ({ retryBackoff: m.retryBackoff }),
  expire_in: (m) => ({ expireInSeconds: seconds(m.expireIn) ?? DEFAULT_POLICY.expireInSeconds }),
  retry_delay_max: (m) => ({ retryDelayMaxSeconds: seconds(m.retryDelayMax) ?? DEFAULT_POLICY.retryDelayMaxSeconds }),
  dead_letter_retention: (m) => ({ deadLetterRetentionSeconds: seconds(m.deadLetterRetention) ?? DEFAULT_POLICY.deadLetterRetentionSeconds }),
  priority: (m) => ({ priority: m.priority }),
  // 0 would mean "never": the default instead.
  concurrency: (m) => ({ concurrency: m.concurrency || DEFAULT_POLICY.concurrency }),
  max_retry_limit: (m) => ({ maxRetryLimit: m.maxRetryLimit || DEFAULT_POLICY.maxRetryLimit }),
  max_expire_in: (m) => ({ maxExpireInSeconds: seconds(m.maxExpireIn) ?? DEFAULT_POLICY.maxExpireInSeconds }),
  key_concurrency: (m) => ({ keyConcurrency: m.keyConcurrency }),
};

/** A policy from `base` with the named fields of `m` (all of them when `fields` is undefined). */
function policyFrom(base: QueuePolicy, m: QueuePolicyMessage | undefined, fields?: string[]): QueuePolicy {
  const p = { ...base };
  if (!m) return p;
  for (const f of fields ?? Object.keys(POLICY_FIELDS)) Object.assign(p, POLICY_FIELDS[f]!(m));
  return p;
}

/** CreateQueue's input: unset durations and a zero concurrency or max_retry_limit take the defaults. */
export function queueToCreate(q: Queue | undefined): QueueInput {
  if (!q) throw new ValidationError([{ field: "queue", description: "is required", reason: "REQUIRED" }]);
  if (!q.name) throw new ValidationError([{ field: "queue.name", description: "is required", reason: "REQUIRED" }]);
  return { name: q.name, description: q.description, policy: policyFrom(DEFAULT_POLICY, q.policy) };
}

/** UpdateQueue's input: the current queue with the fields the mask names. */
export function queueToUpdate(current: QueueDefinition, q: Queue, mask: FieldMask | undefined): QueueInput {
  const paths = requireMask(mask, (p) => p === "description" || p === "policy" || (p.startsWith("policy.") && p.slice(7) in POLICY_FIELDS));
  let policy = current.policy;
  if (paths.includes("policy")) policy = policyFrom(DEFAULT_POLICY, q.policy);
  const fields = paths.filter((p) => p.startsWith("policy.")).map((p) => p.slice(7));
  if (fields.length > 0) policy = policyFrom(policy, q.policy, fields);
  return { name: current.name, description: paths.includes("description") ? q.description : current.description, policy };
}

/** RegisterJobType's input. */
export function jobTypeToRegister(t: JobType | undefined): JobTypeInput {
  if (!t) throw new ValidationError([{ field: "job_type", description: "is required", reason: "REQUIRED" }]);
  const violations: FieldViolation[] = [];
  if (!t.name) violations.push({ field: "job_type.name", description: "is required", reason: "REQUIRED" });
  if (!t.queue) violations.push({ field: "job_type.queue", description: "is required", reason: "REQUIRED" });
  if (violations.length > 0) throw new ValidationError(violations);
  return {
    name: t.name,
    queue: t.queue,
    payloadSchema: t.payloadSchema as Record<string, unknown> | undefined,
    producers: t.producers,
    workers: t.workers,
    description: t.description,
  };
}

const TYPE_FIELDS = ["payload_schema", "producers", "workers", "description"];

/** UpdateJobType's input: the current type with the fields the mask names. */
export function jobTypeToUpdate(current: RegisteredJobType, t: JobType, mask: FieldMask | undefined): Omit<JobTypeInput, "queue"> {
  const paths = requireMask(mask, (p) => TYPE_FIELDS.includes(p));
  const schema = "kind" in current.payload ? current.payload.schema : undefined;
  return {
    name: current.type,
    payloadSchema: paths.includes("payload_schema") ? (t.payloadSchema as Record<string, unknown> | undefined) : schema,
    producers: paths.includes("producers") ? t.producers : [...(current.producers ?? [])],
    workers: paths.includes("workers") ? t.workers : [...(current.workers ?? [])],
    description: paths.includes("description") ? t.description : (current.description ?? ""),
  };
}
