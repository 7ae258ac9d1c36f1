/**
 * jobs.v1.JobService handlers: validate, call the engine, map. Streams (WatchJob, WatchJobs) are
 * registered by the streaming module.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { JobService } from "../../gen/jobs/v1/job_service_pb.js";
import type { EngineApi, JobRegistry, JobStateName } from "../engine/index.js";
import {
  AlreadyExistsError,
  BatchEntryError,
  FailedPreconditionError,
  type FieldViolation,
  mayProduce,
  NotFoundError,
  PermissionError,
  ValidationError,
} from "../engine/index.js";
import { type Instruments, jobAttributes } from "../telemetry/instruments.js";
import { currentTraceparent } from "../telemetry/trace-context.js";
import { principalOf } from "./call-context.js";
import { stateNameOf, toJob } from "./job-mapper.js";
import { type JobStreamDeps, jobStreams } from "./job-streams.js";
import { pageSizeOf, requireUuid, viewerOf } from "./request-fields.js";
import { IDEMPOTENCY_KEY_MAX, isIdempotencyKey, validateAddJob } from "./validation/add-job.js";

export interface JobServiceDeps {
  /** The engine (UNAVAILABLE until it has started). */
  engine: () => EngineApi;
  registry: JobRegistry;
  maxPayloadBytes: number;
  /** How long job events are kept (some payloads may not reach back further). */
  eventRetentionSeconds: number;
  instruments?: Instruments;
}

/** Most jobs of one AddJobs call. */
export const MAX_BATCH_JOBS = 1000;
/** The JobService implementation (unary RPCs). */
export function jobService(deps: JobServiceDeps): Partial<ServiceImpl<typeof JobService>> {
  const { engine, registry } = deps;
  // The AddJob's trace (its RPC span) is stored with the job, so that every attempt joins it.
  const context = (ctx: HandlerContext) => ({
    registry,
    maxPayloadBytes: deps.maxPayloadBytes,
    now: new Date(),
    admin: principalOf(ctx).role === "admin",
    eventRetentionSeconds: deps.eventRetentionSeconds,
    traceparent: currentTraceparent(ctx.requestHeader.get("traceparent")),
  });
  const countAdded = (outcomes: { ok: boolean; deduplicated?: boolean; record?: { jobType: { queue: string; type: string } } }[]) => {
    if (!deps.instruments) return;
    const added = new Map<string, { queue: string; type: string; n: number }>();
    for (const o of outcomes) {
      if (!o.ok || o.deduplicated || !o.record) continue;
      const k = o.record.jobType.type;
      const c = added.get(k) ?? { queue: o.record.jobType.queue, type: k, n: 0 };
      c.n++;
      added.set(k, c);
    }
    for (const c of added.values()) deps.instruments.jobsAdded.add(c.n, jobAttributes(c.queue, c.type));
  };

  return {
    async addJob(req, ctx) {
      const principal = principalOf(ctx);
      const type = registry.type(req.type);
      if (type && principal.role !== "admin" && !mayProduce(type, principal.name))
        throw new PermissionError(`${principal.name} may not add ${type.type} jobs (not in the job type's producers list)`);
      const validated = validateAddJob(req, context(ctx));
      if (validated.violations) throw new ValidationError(validated.violations);
      const outcome = await engine().jobs.add({
        principal: principal.name,
        admin: principal.role === "admin",
        exemptFromQuotas: principal.role === "admin",
        job: validated.job,
      });
      if (!outcome.ok) throw outcome.error;
      countAdded([outcome]);
      return { job: toJob(outcome.record), deduplicated: outcome.deduplicated };
    },

    async addJobs(req, ctx) {
      const principal = principalOf(ctx);
      if (req.jobs.length === 0 || req.jobs.length > MAX_BATCH_JOBS) {
        throw new ValidationError([{ field: "jobs", description: `must hold 1 to ${MAX_BATCH_JOBS} jobs (got ${req.jobs.length})`, reason: "OUT_OF_RANGE" }]);
      }
      const c = context(ctx);
      const violations: FieldViolation[] = [];
      const jobs = req.jobs.map((j, i) => {
        const v = validateAddJob(j, c, `jobs[${i}].`, i);
        if (v.violations) violations.push(...v.violations);
        return v.job;
      });
      if (violations.length > 0) throw new ValidationError(violations.slice(0, 100));
      const outcomes = await engine()
        .jobs.addAll(
          jobs.map((job) => ({ principal: principal.name, admin: principal.role === "admin", exemptFromQuotas: principal.role === "admin", job: job! })),
        )
        .catch(unwrapBatchError);
      countAdded(outcomes);
      return {
        results: outcomes.map((o) => {
          if (!o.ok) throw o.error;
          return { job: toJob(o.record), deduplicated: o.deduplicated };
        }),
      };
    },

    async getJob(req, ctx) {
      const record = await engine().jobs.get(viewerOf(ctx), requireUuid(req.id));
      return { job: toJob(record) };
    },

    async listJobs(req, ctx) {
      const violations: FieldViolation[] = [];
      const queue = req.queue ? registry.queue(req.queue) : undefined;
      if (req.queue && !queue)
        violations.push({ field: "queue", description: `is not a queue (one of: ${registry.queues.map((q) => q.name).join(", ")})`, reason: "UNKNOWN_QUEUE" });
      const type = req.type ? registry.type(req.type) : undefined;
      if (req.type && !type) violations.push({ field: "type", description: "is not a registered job type", reason: "UNKNOWN_JOB_TYPE" });
      if (type && queue && type.queue !== queue.name)
        violations.push({ field: "type", description: `does not belong to queue ${queue.name}`, reason: "INVALID_VALUE" });
      if (req.idempotencyKey && !isIdempotencyKey(req.idempotencyKey)) {
        violations.push({ field: "idempotency_key", description: `must be 1-${IDEMPOTENCY_KEY_MAX} printable ASCII characters`, reason: "INVALID_FORMAT" });
      }
      const states: JobStateName[] = [];
      req.states.forEach((s, i) => {
        const state = stateNameOf(s);
        if (state) states.push(state);
        else violations.push({ field: `states[${i}]`, description: "must be a job state", reason: "INVALID_VALUE" });
      });
      if (violations.length > 0) throw new ValidationError(violations);
      const pageSize = pageSizeOf(req.pageSize);
      const types = type ? [type] : registry.types.filter((t) => !queue || t.queue === queue.name);
      const bossQueues = types.flatMap((t) => (req.includeDeadLetters ? [t.bossQueue, t.deadLetterBossQueue] : [t.bossQueue]));
      const page = await engine().jobs.list(viewerOf(ctx), {
        bossQueues,
        states: states.length > 0 ? states : undefined,
        idempotencyKey: req.idempotencyKey || undefined,
        createdAfter: req.createdAfter ? timestampDate(req.createdAfter) : undefined,
        createdBefore: req.createdBefore ? timestampDate(req.createdBefore) : undefined,
        pageSize,
        pageToken: req.pageToken || undefined,
        tokenScope: {
          queue: req.queue,
          type: req.type,
          states: req.states,
          idempotencyKey: req.idempotencyKey,
          createdAfter: req.createdAfter ? timestampDate(req.createdAfter).toISOString() : null,
          createdBefore: req.createdBefore ? timestampDate(req.createdBefore).toISOString() : null,
          includeDeadLetters: req.includeDeadLetters,
        },
      });
      return { jobs: page.records.map(toJob), nextPageToken: page.nextPageToken };
    },

    async retryJob(req) {
      return { job: toJob(await engine().jobs.retry(requireUuid(req.id))) };
    },

    async cancelJob(req) {
      return { job: toJob(await engine().jobs.cancel(requireUuid(req.id))) };
    },
  };
}

/** An atomic batch's failing entry, named by its index. */
function unwrapBatchError(err: unknown): never {
  if (err instanceof BatchEntryError) {
    const cause = err.cause;
    if (cause instanceof AlreadyExistsError) throw new AlreadyExistsError(`jobs[${err.index}]: ${cause.message}`, cause.reason, cause.metadata);
    if (cause instanceof ValidationError) throw new ValidationError(cause.violations.map((v) => ({ ...v, field: `jobs[${err.index}].${v.field}` })));
    if (cause instanceof NotFoundError) throw new NotFoundError(`jobs[${err.index}]: ${cause.message}`);
    if (cause instanceof FailedPreconditionError) throw new FailedPreconditionError(`jobs[${err.index}]: ${cause.message}`, cause.reason, cause.metadata);
    throw cause;
  }
  throw err;
}

/** Registers JobService, its streams included. */
export function registerJobService(router: ConnectRouter, deps: JobServiceDeps & JobStreamDeps): void {
  router.service(JobService, { ...jobService(deps), ...jobStreams(deps) });
}
