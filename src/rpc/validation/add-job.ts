/**
 * Validation of an AddJob request into a NewJob: the type must be registered, the payload must pass
 * the structural limits and the type's schema, and each option must stay within the bounds its
 * queue allows. Every problem is reported as a field violation; nothing is written for an invalid
 * request.
 */
import { toJson } from "@bufbuild/protobuf";
import { type Duration, type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import { type JobOptions, JobOptionsSchema, ParentFailurePolicy } from "../../../gen/jobs/v1/job_pb.js";
import type { AddJobRequest } from "../../../gen/jobs/v1/job_service_pb.js";
import type { FieldViolation, JobRegistry, NewJob } from "../../engine/index.js";
import { fingerprint } from "../../engine/index.js";
import { durationMsOf, isUuid } from "../request-fields.js";
import { checkJsonLimits, PAYLOAD_MAX_DEPTH, PAYLOAD_MAX_STRING_BYTES } from "./json-limits.js";
import { fieldPath, zodViolations } from "./zod-violations.js";

/** Bounds shared by every queue. */
export const PRIORITY_MIN = -100;
export const PRIORITY_MAX = 100;
export const MAX_SCHEDULE_AHEAD_MS = 365 * 24 * 60 * 60 * 1000;
export const MAX_RETRY_DELAY_SECONDS = 24 * 60 * 60;
export const IDEMPOTENCY_KEY_MAX = 200;
/** Most parents of one job (depends_on and depends_on_batch_indexes together). */
export const MAX_PARENTS = 100;
export const CONCURRENCY_KEY_MAX = 200;

/** Whether `key` is an idempotency key: 1-200 printable ASCII characters. */
export function isIdempotencyKey(key: string): boolean {
  return key.length >= 1 && key.length <= IDEMPOTENCY_KEY_MAX && /^[\x20-\x7e]+$/.test(key);
}

export interface AddJobContext {
  registry: JobRegistry;
  maxPayloadBytes: number;
  now: Date;
  /** Who adds the job: admins and service principals may be held to different rules. */
  admin: boolean;
  eventRetentionSeconds: number;
  traceparent?: string;
}

/** A validated job, or the violations (paths under `prefix`, e.g. `jobs[3].`). */
export type Validated = { job: NewJob; violations?: undefined } | { job?: undefined; violations: FieldViolation[] };

function checkDuration(d: Duration, field: string, out: FieldViolation[]): boolean {
  if (d.nanos < 0 || d.nanos > 999_999_999 || Number(d.seconds) < 0) {
    out.push({ field, description: "must be a non-negative duration", reason: "INVALID_VALUE" });
    return false;
  }
  return true;
}

function checkTimestamp(t: Timestamp, field: string, out: FieldViolation[]): boolean {
  if (t.nanos < 0 || t.nanos > 999_999_999 || Number(t.seconds) < 0 || Number(t.seconds) > 253402300799) {
    out.push({ field, description: "must be a valid timestamp", reason: "INVALID_VALUE" });
    return false;
  }
  return true;
}

/** Parents, failure policy and concurrency key of a job's options (`batchIndex`: its place in AddJobs). */
function relations(o: JobOptions, at: (f: string) => string, batchIndex: number | undefined, out: FieldViolation[]): Partial<NewJob> {
  const job: Partial<NewJob> = {};
  const count = o.dependsOn.length + o.dependsOnBatchIndexes.length;
  if (count > MAX_PARENTS) {
    out.push({ field: at("options.depends_on"), description: `must name at most ${MAX_PARENTS} parents in all (got ${count})`, reason: "OUT_OF_RANGE" });
    return job;
  }
  const seen = new Set<string>();
  o.dependsOn.forEach((id, k) => {
    if (!isUuid(id)) out.push({ field: at(`options.depends_on[${k}]`), description: "must be a job id (a UUID)", reason: "INVALID_FORMAT" });
    else if (seen.has(id.toLowerCase())) out.push({ field: at(`options.depends_on[${k}]`), description: `repeats job ${id}`, reason: "DUPLICATE" });
    else seen.add(id.toLowerCase());
  });
  const indexes = new Set<number>();
  o.dependsOnBatchIndexes.forEach((index, k) => {
    const field = at(`options.depends_on_batch_indexes[${k}]`);
    if (batchIndex === undefined) out.push({ field, description: "is only allowed in AddJobs", reason: "INVALID_VALUE" });
    else if (index < 0 || index >= batchIndex)
      out.push({ field, description: `must be the index of an earlier entry of the batch (0 to ${batchIndex - 1}; got ${index})`, reason: "OUT_OF_RANGE" });
    else if (indexes.has(index)) out.push({ field, description: `repeats entry ${index}`, reason: "DUPLICATE" });
    else indexes.add(index);
  });
  if (seen.size > 0) job.dependsOn = [...seen];
  if (indexes.size > 0) job.dependsOnIndexes = [...indexes];
  if (o.onParentFailure !== ParentFailurePolicy.UNSPECIFIED) {
    if (!(o.onParentFailure in ParentFailurePolicy))
      out.push({ field: at("options.on_parent_failure"), description: "must be a ParentFailurePolicy", reason: "INVALID_VALUE" });
    else if (count === 0)
      out.push({ field: at("options.on_parent_failure"), description: "is only allowed with parents (depends_on)", reason: "INVALID_VALUE" });
    else job.onParentFailure = o.onParentFailure === ParentFailurePolicy.RUN ? "run" : "cancel";
  }
  if (o.concurrencyKey !== undefined) {
    const key = o.concurrencyKey;
    if (key.length < 1 || key.length > CONCURRENCY_KEY_MAX || /\p{Cc}/u.test(key))
      out.push({
        field: at("options.concurrency_key"),
        description: `must be 1-${CONCURRENCY_KEY_MAX} characters without control characters`,
        reason: "INVALID_FORMAT",
      });
    else job.concurrencyKey = key;
  }
  return job;
}

/** Validates one AddJob request (`batchIndex`: its index in an AddJobs call). */
export function validateAddJob(req: AddJobRequest, ctx: AddJobContext, prefix = "", batchIndex?: number): Validated {
  const violations: FieldViolation[] = [];
  const at = (f: string) => `${prefix}${f}`;

  const type = req.type ? ctx.registry.type(req.type) : undefined;
  if (!req.type) violations.push({ field: at("type"), description: "is required", reason: "REQUIRED" });
  else if (!type) {
    violations.push({
      field: at("type"),
      description: `is not a registered job type (one of: ${ctx.registry.types.map((t) => t.type).join(", ")})`,
      reason: "UNKNOWN_JOB_TYPE",
    });
  }

  let payload: Record<string, unknown> | undefined;
  if (req.payload === undefined) violations.push({ field: at("payload"), description: "is required (a JSON object)", reason: "REQUIRED" });
  else {
    const limits = checkJsonLimits(
      req.payload,
      { maxBytes: ctx.maxPayloadBytes, maxDepth: PAYLOAD_MAX_DEPTH, maxStringBytes: PAYLOAD_MAX_STRING_BYTES },
      at("payload"),
    );
    if (limits.length > 0) violations.push(...limits);
    else if (type) {
      const schema = type.payload;
      if ("kind" in schema) {
        // A registered type: its JSON Schema.
        const verdict = schema.check(req.payload);
        if (verdict.ok) payload = req.payload as Record<string, unknown>;
        else for (const r of verdict.problems) violations.push({ field: fieldPath(at("payload"), r.path), description: r.description, reason: r.reason });
      } else {
        const parsed = schema.safeParse(req.payload, { reportInput: true });
        if (!parsed.success) violations.push(...zodViolations(parsed.error, at("payload"), type.type));
        else {
          const refused = type.admit?.(parsed.data, { admin: ctx.admin, now: ctx.now, eventRetentionSeconds: ctx.eventRetentionSeconds }) ?? [];
          if (refused.length === 0) payload = parsed.data as Record<string, unknown>;
          for (const r of refused) violations.push({ field: fieldPath(at("payload"), r.path), description: r.description, reason: r.reason });
        }
      }
    }
  }

  const o: JobOptions | undefined = req.options;
  const policy = type?.queueDefinition.policy;
  let priority = policy?.priority ?? 0;
  let startAt: Date | undefined;
  let delayMs = 0;
  let retryLimit = policy?.retryLimit ?? 0;
  let retryDelaySeconds = policy?.retryDelaySeconds ?? 0;
  let retryBackoff = policy?.retryBackoff ?? false;
  let expireInSeconds = policy?.expireInSeconds ?? 0;
  let idempotencyKey: string | undefined;
  let related: Partial<NewJob> = {};
  if (o) {
    related = relations(o, at, batchIndex, violations);
    if (o.priority !== undefined) {
      if (!Number.isInteger(o.priority) || o.priority < PRIORITY_MIN || o.priority > PRIORITY_MAX) {
        violations.push({ field: at("options.priority"), description: `must be from ${PRIORITY_MIN} to ${PRIORITY_MAX}`, reason: "OUT_OF_RANGE" });
      } else priority = o.priority;
    }
    if (o.schedule.case === "startAfter" && checkTimestamp(o.schedule.value, at("options.start_after"), violations)) {
      const when = timestampDate(o.schedule.value);
      if (when.getTime() - ctx.now.getTime() > MAX_SCHEDULE_AHEAD_MS) {
        violations.push({ field: at("options.start_after"), description: "must be at most 365 days ahead", reason: "OUT_OF_RANGE" });
      } else startAt = when;
    }
    if (o.schedule.case === "delay" && checkDuration(o.schedule.value, at("options.delay"), violations)) {
      const ms = durationMsOf(o.schedule.value);
      if (ms > MAX_SCHEDULE_AHEAD_MS) violations.push({ field: at("options.delay"), description: "must be at most 365 days", reason: "OUT_OF_RANGE" });
      else delayMs = ms;
    }
    if (o.retryLimit !== undefined) {
      const max = policy?.maxRetryLimit ?? 0;
      if (o.retryLimit < 0 || o.retryLimit > max) {
        violations.push({
          field: at("options.retry_limit"),
          description: `must be from 0 to ${max}${type ? ` for queue ${type.queue}` : ""}`,
          reason: "OUT_OF_RANGE",
        });
      } else retryLimit = o.retryLimit;
    }
    if (o.retryDelay && checkDuration(o.retryDelay, at("options.retry_delay"), violations)) {
      if (o.retryDelay.nanos !== 0) violations.push({ field: at("options.retry_delay"), description: "must be whole seconds", reason: "INVALID_VALUE" });
      else if (Number(o.retryDelay.seconds) > MAX_RETRY_DELAY_SECONDS)
        violations.push({ field: at("options.retry_delay"), description: "must be at most 1 day", reason: "OUT_OF_RANGE" });
      else retryDelaySeconds = Number(o.retryDelay.seconds);
    }
    if (o.retryBackoff !== undefined) retryBackoff = o.retryBackoff;
    if (o.expireIn && checkDuration(o.expireIn, at("options.expire_in"), violations)) {
      const max = policy?.maxExpireInSeconds ?? 0;
      const seconds = Number(o.expireIn.seconds);
      if (o.expireIn.nanos !== 0) violations.push({ field: at("options.expire_in"), description: "must be whole seconds", reason: "INVALID_VALUE" });
      else if (seconds < 1 || seconds > max) {
        violations.push({
          field: at("options.expire_in"),
          description: `must be from 1 s to ${max} s${type ? ` for queue ${type.queue}` : ""}`,
          reason: "OUT_OF_RANGE",
        });
      } else expireInSeconds = seconds;
    }
    if (o.idempotencyKey !== undefined) {
      if (!isIdempotencyKey(o.idempotencyKey)) {
        violations.push({
          field: at("options.idempotency_key"),
          description: `must be 1-${IDEMPOTENCY_KEY_MAX} printable ASCII characters`,
          reason: "INVALID_FORMAT",
        });
      } else idempotencyKey = o.idempotencyKey;
    }
  }

  if (violations.length > 0 || !type || !payload) return { violations };
  // Only a key's repeat is compared with its first request.
  const requestHash =
    idempotencyKey === undefined ? undefined : fingerprint({ type: req.type, payload: req.payload, options: o ? toJson(JobOptionsSchema, o) : {} });
  const job: NewJob = {
    type,
    payload,
    priority,
    startAt,
    delayMs,
    retryLimit,
    retryDelaySeconds,
    retryBackoff,
    expireInSeconds,
    idempotencyKey,
    requestHash,
    ...related,
  };
  if (ctx.traceparent) job.traceparent = ctx.traceparent;
  return { job };
}
