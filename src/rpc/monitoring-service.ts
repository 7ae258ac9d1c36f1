/**
 * jobs.v1.MonitoringService handlers. RPCs not implemented here answer UNIMPLEMENTED naming
 * themselves.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import {
  HealthStatus,
  type MetricsSnapshot,
  MetricsSnapshotSchema,
  MonitoringService,
  RateLimitSchema,
  RateLimitScope,
} from "../../gen/jobs/v1/monitoring_service_pb.js";
import type { EngineApi, JobRegistry, RateLimitRow } from "../engine/index.js";
import { type FieldViolation, NotFoundError, SAMPLER_TICK_MS, ValidationError } from "../engine/index.js";
import { alertRpcs } from "./alerts.js";
import { principalOf, transportKey } from "./call-context.js";
import { toMetricsSnapshot } from "./metrics-mapper.js";
import { durationMsOf, pageSizeOf, windowSecondsOf } from "./request-fields.js";
import type { StreamLimits } from "./stream-limits.js";
import { StreamQueue } from "./stream-queue.js";

/** Default and bounds of GetMetrics' window. */
export const DEFAULT_METRICS_WINDOW_SECONDS = 5 * 60;
export const MAX_METRICS_WINDOW_SECONDS = 7 * 24 * 60 * 60;

/** Largest `limit` of a rate limit. */
export const MAX_RATE_LIMIT = 1_000_000;

import type { ComponentStatus, HealthMonitor } from "../health.js";

export interface MonitoringServiceDeps {
  health: HealthMonitor;
  engine: () => EngineApi;
  registry: JobRegistry;
  limits: StreamLimits;
  maxStreamBytes: number;
}

/** WatchMetrics intervals. */
export const DEFAULT_WATCH_INTERVAL_MS = 1000;
export const MAX_WATCH_INTERVAL_MS = 60 * 60 * 1000;

const scopes: Record<RateLimitRow["scope"], RateLimitScope> = {
  job_type: RateLimitScope.JOB_TYPE,
  queue: RateLimitScope.QUEUE,
  api_principal: RateLimitScope.API_PRINCIPAL,
};
const scopeOf = (s: RateLimitScope) => (Object.keys(scopes) as RateLimitRow["scope"][]).find((k) => scopes[k] === s);

function toRateLimit(r: RateLimitRow) {
  return create(RateLimitSchema, {
    scope: scopes[r.scope],
    key: r.key,
    limit: r.max_events,
    interval: durationFromMs(Number(r.interval_ms)),
    updatedAt: timestampFromDate(r.updated_at),
    updatedBy: r.updated_by,
  });
}

/** Validates a rate limit's scope and key against the registry; returns the stored scope name. */
function checkScopeKey(
  registry: JobRegistry,
  scope: RateLimitScope,
  key: string,
  prefix: string,
): { scope?: RateLimitRow["scope"]; violations: FieldViolation[] } {
  const violations: FieldViolation[] = [];
  const stored = scopeOf(scope);
  if (!stored) violations.push({ field: `${prefix}scope`, description: "is required (JOB_TYPE, QUEUE or API_PRINCIPAL)", reason: "REQUIRED" });
  if (!key) violations.push({ field: `${prefix}key`, description: "is required", reason: "REQUIRED" });
  else if (stored === "job_type" && !registry.type(key))
    violations.push({ field: `${prefix}key`, description: "is not a registered job type", reason: "UNKNOWN_JOB_TYPE" });
  else if (stored === "queue" && !registry.queue(key)) violations.push({ field: `${prefix}key`, description: "is not a queue", reason: "UNKNOWN_QUEUE" });
  else if (stored === "api_principal" && !/^[A-Za-z0-9_.-]{1,64}$/.test(key))
    violations.push({ field: `${prefix}key`, description: "is not a principal name (1-64 of A-Z a-z 0-9 _ . -)", reason: "INVALID_FORMAT" });
  return { scope: stored, violations };
}

const statusOf: Record<ComponentStatus, HealthStatus> = {
  healthy: HealthStatus.HEALTHY,
  degraded: HealthStatus.DEGRADED,
  unhealthy: HealthStatus.UNHEALTHY,
};

/** The MonitoringService implementation. */
export function monitoringService(deps: MonitoringServiceDeps): Partial<ServiceImpl<typeof MonitoringService>> {
  const { engine, registry } = deps;
  return {
    ...alertRpcs({ engine, registry }),
    async *watchMetrics(req, ctx) {
      if (req.queue && !registry.queue(req.queue)) throw new ValidationError([{ field: "queue", description: "is not a queue", reason: "UNKNOWN_QUEUE" }]);
      const intervalMs = req.interval ? durationMsOf(req.interval) : DEFAULT_WATCH_INTERVAL_MS;
      if (intervalMs < SAMPLER_TICK_MS || intervalMs > MAX_WATCH_INTERVAL_MS) {
        throw new ValidationError([{ field: "interval", description: `must be from ${SAMPLER_TICK_MS} ms to 1 h`, reason: "OUT_OF_RANGE" }]);
      }
      const lease = deps.limits.open(principalOf(ctx).name, ctx.signal);
      try {
        const out = new StreamQueue<MetricsSnapshot>({
          maxBytes: deps.maxStreamBytes,
          signal: ctx.signal,
          onOverflow: () => setTimeout(() => ctx.values.get(transportKey)?.cut(), 2000).unref(),
        });
        lease.also(
          engine().metrics.watch(intervalMs, (view) => {
            const snapshot = toMetricsSnapshot(view, req.queue || undefined);
            out.push(snapshot, toBinary(MetricsSnapshotSchema, snapshot).length);
          }),
        );
        for await (const snapshot of out) yield { snapshot };
      } finally {
        lease.release();
      }
    },

    async getMetrics(req) {
      if (req.queue && !registry.queue(req.queue)) throw new ValidationError([{ field: "queue", description: "is not a queue", reason: "UNKNOWN_QUEUE" }]);
      const windowSeconds = windowSecondsOf(req.window, "window", DEFAULT_METRICS_WINDOW_SECONDS, 60, MAX_METRICS_WINDOW_SECONDS);
      return { snapshot: toMetricsSnapshot(await engine().metrics.snapshot(windowSeconds), req.queue || undefined) };
    },

    async listRateLimits(req) {
      const e = engine();
      const pageSize = pageSizeOf(req.pageSize, "page_size", 100, 100);
      const after = req.pageToken ? e.pageTokens.verify<{ k: string }>("rate-limits", {}, req.pageToken).k : undefined;
      const all = e.limits.list().filter((l) => after === undefined || `${l.scope}\u0000${l.key}` > after);
      const page = all.slice(0, pageSize);
      const last = page[page.length - 1];
      return {
        rateLimits: page.map(toRateLimit),
        nextPageToken: all.length > page.length && last ? e.pageTokens.sign("rate-limits", {}, { k: `${last.scope}\u0000${last.key}` }) : "",
      };
    },

    async setRateLimit(req, ctx) {
      const r = req.rateLimit;
      if (!r) throw new ValidationError([{ field: "rate_limit", description: "is required", reason: "REQUIRED" }]);
      const { scope, violations } = checkScopeKey(registry, r.scope, r.key, "rate_limit.");
      if (!Number.isInteger(r.limit) || r.limit < 1 || r.limit > MAX_RATE_LIMIT) {
        violations.push({ field: "rate_limit.limit", description: `must be from 1 to ${MAX_RATE_LIMIT}`, reason: "OUT_OF_RANGE" });
      }
      const intervalMs = r.interval ? durationMsOf(r.interval) : 0;
      if (!r.interval) violations.push({ field: "rate_limit.interval", description: "is required", reason: "REQUIRED" });
      else if (intervalMs < 1000 || intervalMs > 86_400_000)
        violations.push({ field: "rate_limit.interval", description: "must be from 1 s to 1 day", reason: "OUT_OF_RANGE" });
      if (violations.length > 0) throw new ValidationError(violations);
      const stored = await engine().limits.set({
        scope: scope!,
        key: r.key,
        max_events: r.limit,
        interval_ms: intervalMs,
        updated_by: principalOf(ctx).name,
      });
      return { rateLimit: toRateLimit(stored) };
    },

    async deleteRateLimit(req) {
      const { scope, violations } = checkScopeKey(registry, req.scope, req.key, "");
      if (violations.length > 0) throw new ValidationError(violations);
      if (!(await engine().limits.delete(scope!, req.key))) throw new NotFoundError(`no rate limit for ${scope} ${req.key}`);
      return {};
    },

    getHealth() {
      return {
        status: statusOf[deps.health.overall()],
        components: deps.health
          .components()
          .map((c) => ({ name: c.name, status: statusOf[c.status], detail: c.detail, checkedAt: timestampFromDate(c.checkedAt) })),
      };
    },
  };
}

/** Registers MonitoringService. */
export function registerMonitoringService(router: ConnectRouter, deps: MonitoringServiceDeps): void {
  router.service(MonitoringService, monitoringService(deps));
}
