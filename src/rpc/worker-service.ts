/**
 * jobs.v1.WorkerService handlers: external workers fetch, heartbeat, complete, fail and report
 * progress. Requests are checked here (sizes, counts, formats); the engine checks that the caller
 * may work each job type and fences every step to the attempt its lease names.
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { LeaseState, WorkerService } from "../../gen/jobs/v1/worker_service_pb.js";
import { type EngineApi, type FieldViolation, MAX_FETCH_JOBS, MAX_FETCH_WAIT_MS, MAX_PROGRESS_MESSAGE, ValidationError } from "../engine/index.js";
import { toJob } from "./job-mapper.js";
import { durationMsOf, viewerOf } from "./request-fields.js";
import { checkJsonLimits, PAYLOAD_MAX_DEPTH, PAYLOAD_MAX_STRING_BYTES } from "./validation/json-limits.js";

export interface WorkerServiceDeps {
  engine: () => EngineApi;
  /** Largest result a CompleteJob may carry, as JSON. */
  maxResultBytes: number;
}

/** Job types one FetchJobs may name. */
export const MAX_FETCH_TYPES = 50;
/** Leases one HeartbeatJobs may extend. */
export const MAX_HEARTBEAT_LEASES = 500;
const MAX_ERROR = 1000;
const REASON = /^[A-Z][A-Z0-9_]{0,63}$/;
const WORKER_ID = /^[\x20-\x7e]{0,200}$/;

const fail = (field: string, description: string, reason: string): never => {
  throw new ValidationError([{ field, description, reason }]);
};
const requireToken = (token: string, field = "lease_token") => token || fail(field, "is required", "REQUIRED");

/** The WorkerService implementation. */
export function workerService(deps: WorkerServiceDeps): ServiceImpl<typeof WorkerService> {
  const { engine } = deps;
  return {
    async fetchJobs(req, ctx) {
      const violations: FieldViolation[] = [];
      if (req.types.length === 0 || req.types.length > MAX_FETCH_TYPES)
        violations.push({ field: "types", description: `must name 1 to ${MAX_FETCH_TYPES} job types`, reason: "OUT_OF_RANGE" });
      const max = req.maxJobs || 1;
      if (max < 1 || max > MAX_FETCH_JOBS) violations.push({ field: "max_jobs", description: `must be from 1 to ${MAX_FETCH_JOBS}`, reason: "OUT_OF_RANGE" });
      const waitMs = req.wait ? durationMsOf(req.wait) : 0;
      if (waitMs < 0 || waitMs > MAX_FETCH_WAIT_MS)
        violations.push({ field: "wait", description: `must be from 0 to ${MAX_FETCH_WAIT_MS / 1000} s`, reason: "OUT_OF_RANGE" });
      if (!WORKER_ID.test(req.workerId))
        violations.push({ field: "worker_id", description: "must be at most 200 printable characters", reason: "INVALID_FORMAT" });
      if (violations.length > 0) throw new ValidationError(violations);
      const leased = await engine().workers.fetch(viewerOf(ctx), req.types, max, waitMs, ctx.signal);
      return { jobs: leased.map((l) => ({ job: toJob(l.record), lease: { token: l.token, expiresAt: timestampFromDate(l.expiresAt) } })) };
    },

    async heartbeatJobs(req, ctx) {
      if (req.leaseTokens.length === 0 || req.leaseTokens.length > MAX_HEARTBEAT_LEASES)
        fail("lease_tokens", `must hold 1 to ${MAX_HEARTBEAT_LEASES} tokens`, "OUT_OF_RANGE");
      for (const [i, t] of req.leaseTokens.entries()) requireToken(t, `lease_tokens[${i}]`);
      const states = await engine().workers.heartbeat(viewerOf(ctx), req.leaseTokens);
      return {
        leases: states.map((s) => ({
          leaseToken: s.token,
          state: s.state === "held" ? LeaseState.HELD : s.state === "lost" ? LeaseState.LOST : LeaseState.CANCEL_REQUESTED,
          expiresAt: s.expiresAt ? timestampFromDate(s.expiresAt) : undefined,
        })),
      };
    },

    async completeJob(req, ctx) {
      requireToken(req.leaseToken);
      const result = (req.result ?? {}) as Record<string, unknown>;
      const limits = checkJsonLimits(
        result,
        { maxBytes: deps.maxResultBytes, maxDepth: PAYLOAD_MAX_DEPTH, maxStringBytes: PAYLOAD_MAX_STRING_BYTES },
        "result",
      );
      if (limits.length > 0) throw new ValidationError(limits);
      return { job: toJob(await engine().workers.complete(viewerOf(ctx), req.leaseToken, result)) };
    },

    async failJob(req, ctx) {
      requireToken(req.leaseToken);
      if (!req.error) fail("error", "is required (what went wrong)", "REQUIRED");
      if (req.error.length > MAX_ERROR) fail("error", `must be at most ${MAX_ERROR} characters`, "TOO_LONG");
      if (req.reason && !REASON.test(req.reason)) fail("reason", `must match ${REASON.source}`, "INVALID_FORMAT");
      return { job: toJob(await engine().workers.fail(viewerOf(ctx), req.leaseToken, req.error, req.retryable, req.reason || undefined)) };
    },

    async reportProgress(req, ctx) {
      requireToken(req.leaseToken);
      if (req.percent < 0 || req.percent > 100) fail("percent", "must be from 0 to 100", "OUT_OF_RANGE");
      if (req.message.length > MAX_PROGRESS_MESSAGE) fail("message", `must be at most ${MAX_PROGRESS_MESSAGE} characters`, "TOO_LONG");
      await engine().workers.reportProgress(viewerOf(ctx), req.leaseToken, req.percent, req.message);
      return {};
    },
  };
}

/** Registers WorkerService. */
export function registerWorkerService(router: ConnectRouter, deps: WorkerServiceDeps): void {
  router.service(WorkerService, workerService(deps));
}
