/**
 * jobs.v1.ScheduleService handlers. A schedule's payload and options are checked as AddJob checks
 * them (the same violations, under `schedule.`); its name, cron and time zone by the engine's rules;
 * every problem in one INVALID_ARGUMENT, nothing written.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { type JobOptions, JobOptionsSchema } from "../../gen/jobs/v1/job_pb.js";
import { AddJobRequestSchema } from "../../gen/jobs/v1/job_service_pb.js";
import { type Schedule, ScheduleSchema, ScheduleService } from "../../gen/jobs/v1/schedule_service_pb.js";
import {
  type EngineApi,
  type FieldViolation,
  type JobRegistry,
  type ScheduleInput,
  type ScheduleOptions,
  type ScheduleRow,
  scheduleViolations,
  ValidationError,
} from "../engine/index.js";
import { principalOf } from "./call-context.js";
import { pageSizeOf, requireMask } from "./request-fields.js";
import { validateAddJob } from "./validation/add-job.js";

export interface ScheduleServiceDeps {
  engine: () => EngineApi;
  registry: JobRegistry;
  maxPayloadBytes: number;
  eventRetentionSeconds: number;
}

const UPDATABLE = ["type", "cron", "time_zone", "payload", "options"];

/** The API's view of a schedule. */
export function toSchedule(r: ScheduleRow): Schedule {
  const o = r.options;
  return create(ScheduleSchema, {
    name: r.name,
    type: r.type,
    cron: r.cron,
    timeZone: r.time_zone,
    payload: r.payload as never,
    options: create(JobOptionsSchema, {
      priority: o.priority,
      retryLimit: o.retryLimit,
      retryDelay: o.retryDelaySeconds !== undefined ? { seconds: BigInt(o.retryDelaySeconds) } : undefined,
      retryBackoff: o.retryBackoff,
      expireIn: o.expireInSeconds !== undefined ? { seconds: BigInt(o.expireInSeconds) } : undefined,
      concurrencyKey: o.concurrencyKey,
    }),
    paused: r.paused,
    nextRunAt: r.next_run_at ? timestampFromDate(r.next_run_at) : undefined,
    lastRunAt: r.last_run_at ? timestampFromDate(r.last_run_at) : undefined,
    lastJobId: r.last_job_id ?? "",
    createdBy: r.created_by,
    createTime: timestampFromDate(r.created_at),
    updateTime: timestampFromDate(r.updated_at),
  });
}

/** The ScheduleService implementation. */
export function scheduleService(deps: ScheduleServiceDeps): ServiceImpl<typeof ScheduleService> {
  const { engine } = deps;

  /** The schedule to write, or every violation of `s` (payload and options as AddJob checks them). */
  function inputOf(s: { name: string; type: string; cron: string; timeZone: string; payload?: unknown; options?: JobOptions }): ScheduleInput {
    const violations: FieldViolation[] = scheduleViolations(s);
    const o = s.options;
    if (o?.idempotencyKey !== undefined)
      violations.push({ field: "schedule.options.idempotency_key", description: "is set per tick (schedule:<name>:<tick>)", reason: "NOT_ALLOWED" });
    if (o?.schedule.case === "startAfter" || o?.schedule.case === "delay")
      violations.push({
        field: `schedule.options.${o.schedule.case === "delay" ? "delay" : "start_after"}`,
        description: "is not allowed: each job runs at its tick",
        reason: "NOT_ALLOWED",
      });
    if (o && (o.dependsOn.length > 0 || o.dependsOnBatchIndexes.length > 0))
      violations.push({ field: "schedule.options.depends_on", description: "is not allowed: a tick's job has no parents", reason: "NOT_ALLOWED" });
    if (o && o.onParentFailure !== 0)
      violations.push({ field: "schedule.options.on_parent_failure", description: "is not allowed: a tick's job has no parents", reason: "NOT_ALLOWED" });
    const checked = validateAddJob(
      create(AddJobRequestSchema, {
        type: s.type,
        payload: s.payload as never,
        options: o
          ? { ...o, idempotencyKey: undefined, schedule: { case: undefined }, dependsOn: [], dependsOnBatchIndexes: [], onParentFailure: 0 }
          : undefined,
      }),
      { registry: deps.registry, maxPayloadBytes: deps.maxPayloadBytes, now: new Date(), admin: true, eventRetentionSeconds: deps.eventRetentionSeconds },
      "schedule.",
    );
    if (checked.violations) violations.push(...checked.violations);
    if (violations.length > 0 || !checked.job) throw new ValidationError(violations);
    const job = checked.job;
    const options: ScheduleOptions = {};
    if (o?.priority !== undefined) options.priority = job.priority;
    if (o?.retryLimit !== undefined) options.retryLimit = job.retryLimit;
    if (o?.retryDelay) options.retryDelaySeconds = job.retryDelaySeconds;
    if (o?.retryBackoff !== undefined) options.retryBackoff = job.retryBackoff;
    if (o?.expireIn) options.expireInSeconds = job.expireInSeconds;
    if (job.concurrencyKey !== undefined) options.concurrencyKey = job.concurrencyKey;
    return { name: s.name, type: s.type, cron: s.cron, timeZone: s.timeZone, payload: job.payload, options };
  }

  const requireName = (name: string) => {
    if (!name) throw new ValidationError([{ field: "name", description: "is required", reason: "REQUIRED" }]);
    return name;
  };

  return {
    async createSchedule(req, ctx: HandlerContext) {
      const s = req.schedule;
      if (!s) throw new ValidationError([{ field: "schedule", description: "is required", reason: "REQUIRED" }]);
      const row = await engine().schedules.create(inputOf(s), principalOf(ctx).name);
      return { schedule: toSchedule(row) };
    },

    async getSchedule(req) {
      return { schedule: toSchedule(await engine().schedules.get(requireName(req.name))) };
    },

    async listSchedules(req) {
      const e = engine();
      const pageSize = pageSizeOf(req.pageSize, "page_size", 100, 100);
      const after = req.pageToken ? e.pageTokens.verify<{ n: string }>("schedules", {}, req.pageToken).n : undefined;
      const rows = await e.schedules.list(pageSize + 1, after);
      const page = rows.slice(0, pageSize);
      return {
        schedules: page.map(toSchedule),
        nextPageToken: rows.length > pageSize ? e.pageTokens.sign("schedules", {}, { n: page[page.length - 1]!.name }) : "",
      };
    },

    async updateSchedule(req) {
      const s = req.schedule;
      if (!s) throw new ValidationError([{ field: "schedule", description: "is required", reason: "REQUIRED" }]);
      requireName(s.name);
      const paths = requireMask(req.updateMask, (p) => UPDATABLE.includes(p));
      const row = await engine().schedules.update(s.name, (current) => {
        const has = (p: string) => paths.includes(p);
        const input = inputOf({
          name: current.name,
          type: has("type") ? s.type : current.type,
          cron: has("cron") ? s.cron : current.cron,
          timeZone: has("time_zone") ? s.timeZone : current.time_zone,
          payload: has("payload") ? s.payload : current.payload,
          options: has("options") ? s.options : undefined,
        });
        return has("options") ? input : { ...input, options: current.options };
      });
      return { schedule: toSchedule(row) };
    },

    async deleteSchedule(req) {
      await engine().schedules.remove(requireName(req.name));
      return {};
    },

    async pauseSchedule(req) {
      return { schedule: toSchedule(await engine().schedules.pause(requireName(req.name))) };
    },

    async resumeSchedule(req) {
      return { schedule: toSchedule(await engine().schedules.resume(requireName(req.name))) };
    },
  };
}

export function registerScheduleService(router: ConnectRouter, deps: ScheduleServiceDeps): void {
  router.service(ScheduleService, scheduleService(deps));
}
