/**
 * The alert RPCs of MonitoringService: rules (list, create, update with a field mask, delete) and
 * alert instances (list, acknowledge). Rules are validated whole: the metric's needs (a percentile),
 * the queue and job type, webhook hosts allowed by configuration, email addresses.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { z } from "zod";
import { AlertMetric, type AlertRule, AlertRuleSchema, AlertSchema, AlertState, type MonitoringService } from "../../gen/jobs/v1/monitoring_service_pb.js";
import type { AlertMetricName, AlertRow, AlertRuleRow, AlertStateName, AlertTarget, EngineApi, JobRegistry, RuleFields } from "../engine/index.js";
import { FailedPreconditionError, type FieldViolation, NotFoundError, ValidationError, webhookAllowed } from "../engine/index.js";
import { principalOf } from "./call-context.js";
import { pageSizeOf, requireUuid } from "./request-fields.js";
import { textProblem } from "./validation/json-limits.js";

export interface AlertDeps {
  engine: () => EngineApi;
  registry: JobRegistry;
}

const metrics: Record<AlertMetricName, AlertMetric> = {
  queue_depth: AlertMetric.QUEUE_DEPTH,
  failure_rate: AlertMetric.FAILURE_RATE,
  dead_letter_count: AlertMetric.DEAD_LETTER_COUNT,
  oldest_queued_age: AlertMetric.OLDEST_QUEUED_AGE,
  run_time_percentile: AlertMetric.RUN_TIME_PERCENTILE,
};
const metricName = (m: AlertMetric) => (Object.keys(metrics) as AlertMetricName[]).find((k) => metrics[k] === m);
const states: Record<AlertStateName, AlertState> = { firing: AlertState.FIRING, acknowledged: AlertState.ACKNOWLEDGED, resolved: AlertState.RESOLVED };
const stateName = (s: AlertState) => (Object.keys(states) as AlertStateName[]).find((k) => states[k] === s);

/** Most targets of a rule, recipients of an email target. */
export const MAX_TARGETS = 10;
export const MAX_ALERT_RECIPIENTS = 50;
const DEFAULT_WINDOW_SECONDS = 300;
const email = z.email();

/**
 * A rule as its caller may see it: webhook URLs (which often carry a secret) and email addresses are
 * shown to admins only; others see each target's kind with the URL and addresses left empty.
 */
function toRule(r: AlertRuleRow, reveal = true): AlertRule {
  return create(AlertRuleSchema, {
    id: r.id,
    name: r.name,
    metric: metrics[r.metric],
    queue: r.queue,
    jobType: r.job_type ?? "",
    threshold: r.threshold,
    window: durationFromMs(r.window_seconds * 1000),
    percentile: r.percentile ?? 0,
    targets: r.targets.map((t) =>
      "webhook" in t
        ? { target: { case: "webhook" as const, value: { url: reveal ? t.webhook.url : "" } } }
        : { target: { case: "email" as const, value: { to: reveal ? t.email.to : [] } } },
    ),
    enabled: r.enabled,
    description: r.description,
    createdAt: timestampFromDate(r.created_at),
    updatedAt: timestampFromDate(r.updated_at),
  });
}

function toAlert(a: AlertRow) {
  return create(AlertSchema, {
    id: a.id,
    ruleId: a.rule_id ?? "",
    ruleName: a.rule_name,
    state: states[a.state],
    value: a.value,
    threshold: a.threshold,
    summary: a.summary,
    firedAt: timestampFromDate(a.fired_at),
    acknowledgedAt: a.acknowledged_at ? timestampFromDate(a.acknowledged_at) : undefined,
    acknowledgedBy: a.acknowledged_by ?? "",
    resolvedAt: a.resolved_at ? timestampFromDate(a.resolved_at) : undefined,
    lastValue: a.last_value,
    notified: a.notified_at !== null,
  });
}

/** The editable fields of a rule message, as the update mask names them. */
const EDITABLE = ["name", "description", "metric", "queue", "job_type", "threshold", "window", "percentile", "targets", "enabled"] as const;

/** Validates a rule (already merged for an update) into the stored fields. */
function validateRule(r: AlertRule, registry: JobRegistry, allowedHosts: readonly string[]): RuleFields {
  const v: FieldViolation[] = [];
  const at = (f: string) => `rule.${f}`;
  if (!r.name || r.name.length > 100) v.push({ field: at("name"), description: "is required, 1 to 100 characters", reason: r.name ? "TOO_LONG" : "REQUIRED" });
  if (r.description.length > 2000) v.push({ field: at("description"), description: "must be at most 2000 characters", reason: "TOO_LONG" });
  for (const [field, text] of [
    ["name", r.name],
    ["description", r.description],
  ] as const) {
    const problem = textProblem(text);
    if (problem) v.push({ field: at(field), ...problem });
  }
  const metric = metricName(r.metric);
  if (!metric) v.push({ field: at("metric"), description: "is required", reason: "REQUIRED" });
  const queue = registry.queue(r.queue);
  if (!r.queue) v.push({ field: at("queue"), description: "is required", reason: "REQUIRED" });
  else if (!queue) v.push({ field: at("queue"), description: "is not a queue", reason: "UNKNOWN_QUEUE" });
  if (r.jobType && registry.type(r.jobType)?.queue !== r.queue)
    v.push({ field: at("job_type"), description: `is not a job type of queue ${r.queue}`, reason: "INVALID_VALUE" });
  if (!Number.isFinite(r.threshold) || r.threshold < 0)
    v.push({ field: at("threshold"), description: "must be a finite number, 0 or more", reason: "OUT_OF_RANGE" });
  if (metric === "failure_rate" && r.threshold > 1) v.push({ field: at("threshold"), description: "is a rate: must be from 0 to 1", reason: "OUT_OF_RANGE" });
  const windowMs = r.window ? Number(r.window.seconds) * 1000 + r.window.nanos / 1e6 : DEFAULT_WINDOW_SECONDS * 1000;
  if (windowMs < 60_000 || windowMs > 86_400_000 || windowMs % 1000 !== 0)
    v.push({ field: at("window"), description: "must be whole seconds from 1 minute to 1 day", reason: "OUT_OF_RANGE" });
  if (metric === "run_time_percentile" && !(r.percentile > 0 && r.percentile <= 100))
    v.push({ field: at("percentile"), description: "is required for RUN_TIME_PERCENTILE: above 0 and at most 100", reason: "OUT_OF_RANGE" });
  if (r.targets.length > MAX_TARGETS) v.push({ field: at("targets"), description: `must be at most ${MAX_TARGETS}`, reason: "TOO_MANY" });
  const targets: AlertTarget[] = [];
  r.targets.forEach((t, i) => {
    if (t.target.case === "webhook") {
      if (!webhookAllowed(t.target.value.url, allowedHosts)) {
        v.push({
          field: at(`targets[${i}].webhook.url`),
          description: `must be an http(s) URL whose host and port are in ALERT_WEBHOOK_ALLOWED_HOSTS (${allowedHosts.join(", ") || "none configured"})`,
          reason: "HOST_NOT_ALLOWED",
        });
      } else targets.push({ webhook: { url: t.target.value.url } });
    } else if (t.target.case === "email") {
      const to = t.target.value.to;
      if (to.length === 0 || to.length > MAX_ALERT_RECIPIENTS)
        v.push({ field: at(`targets[${i}].email.to`), description: `must list 1 to ${MAX_ALERT_RECIPIENTS} addresses`, reason: "OUT_OF_RANGE" });
      to.forEach((addr, j) => {
        if (!email.safeParse(addr).success)
          v.push({ field: at(`targets[${i}].email.to[${j}]`), description: "must be an email address", reason: "INVALID_FORMAT" });
      });
      targets.push({ email: { to } });
    } else v.push({ field: at(`targets[${i}]`), description: "must be a webhook or an email", reason: "REQUIRED" });
  });
  if (v.length > 0) throw new ValidationError(v);
  return {
    name: r.name,
    description: r.description,
    metric: metric!,
    queue: r.queue,
    job_type: r.jobType || null,
    threshold: r.threshold,
    window_seconds: windowMs / 1000,
    percentile: metric === "run_time_percentile" ? r.percentile : null,
    targets,
    enabled: r.enabled ?? true,
  };
}

/** The alert RPC implementations. */
export function alertRpcs(
  deps: AlertDeps,
): Pick<
  ServiceImpl<typeof MonitoringService>,
  "listAlertRules" | "createAlertRule" | "updateAlertRule" | "deleteAlertRule" | "listAlerts" | "acknowledgeAlert"
> {
  const { engine, registry } = deps;
  const store = () => engine().alerts;
  return {
    async listAlertRules(req, ctx) {
      const e = engine();
      const pageSize = pageSizeOf(req.pageSize, "page_size", 100, 100);
      const after = req.pageToken ? e.pageTokens.verify<{ n: string }>("alert-rules", {}, req.pageToken).n : undefined;
      const rows = await store().rules(after, pageSize + 1);
      const page = rows.slice(0, pageSize);
      const admin = principalOf(ctx).role === "admin";
      return {
        rules: page.map((r) => toRule(r, admin)),
        nextPageToken: rows.length > pageSize ? e.pageTokens.sign("alert-rules", {}, { n: page[page.length - 1]!.name }) : "",
      };
    },

    async createAlertRule(req) {
      if (!req.rule) throw new ValidationError([{ field: "rule", description: "is required", reason: "REQUIRED" }]);
      const fields = validateRule(req.rule, registry, engine().alerts.webhooks.allowedHosts);
      const row = await store().createRule(fields);
      return { rule: toRule(row) };
    },

    async updateAlertRule(req) {
      if (!req.rule) throw new ValidationError([{ field: "rule", description: "is required", reason: "REQUIRED" }]);
      const id = requireUuid(req.rule.id, "rule.id");
      const existing = await store().rule(id);
      if (!existing) throw new NotFoundError(`alert rule ${id} not found`);
      const paths = req.updateMask?.paths.length ? req.updateMask.paths : [...EDITABLE];
      const unknown = paths.filter((p) => !(EDITABLE as readonly string[]).includes(p));
      if (unknown.length > 0)
        throw new ValidationError(
          unknown.map((p) => ({
            field: "update_mask",
            description: `${p} is not a field that can be changed (${EDITABLE.join(", ")})`,
            reason: "INVALID_VALUE",
          })),
        );
      const merged = toRule(existing);
      const r = req.rule;
      for (const p of paths) {
        if (p === "name") merged.name = r.name;
        if (p === "description") merged.description = r.description;
        if (p === "metric") merged.metric = r.metric;
        if (p === "queue") merged.queue = r.queue;
        if (p === "job_type") merged.jobType = r.jobType;
        if (p === "threshold") merged.threshold = r.threshold;
        if (p === "window") merged.window = r.window;
        if (p === "percentile") merged.percentile = r.percentile;
        if (p === "targets") merged.targets = r.targets;
        if (p === "enabled") merged.enabled = r.enabled ?? true;
      }
      const fields = validateRule(merged, registry, engine().alerts.webhooks.allowedHosts);
      const row = await store().updateRule(id, fields);
      if (!row) throw new NotFoundError(`alert rule ${id} not found`);
      return { rule: toRule(row) };
    },

    async deleteAlertRule(req) {
      const id = requireUuid(req.id);
      if (!(await store().deleteRule(id))) throw new NotFoundError(`alert rule ${id} not found`);
      return {};
    },

    async listAlerts(req) {
      const e = engine();
      const state = req.state === AlertState.UNSPECIFIED ? undefined : stateName(req.state);
      if (req.state !== AlertState.UNSPECIFIED && !state)
        throw new ValidationError([{ field: "state", description: "must be an alert state", reason: "INVALID_VALUE" }]);
      const pageSize = pageSizeOf(req.pageSize);
      const scope = { state: state ?? null };
      const after = req.pageToken ? e.pageTokens.verify<{ f: string; i: string }>("alerts", scope, req.pageToken) : undefined;
      const rows = await store().alerts(state, after ? { firedAt: new Date(after.f), id: after.i } : undefined, pageSize + 1);
      const page = rows.slice(0, pageSize);
      const last = page[page.length - 1];
      return {
        alerts: page.map(toAlert),
        nextPageToken: rows.length > pageSize && last ? e.pageTokens.sign("alerts", scope, { f: last.fired_at.toISOString(), i: last.id }) : "",
      };
    },

    async acknowledgeAlert(req, ctx: HandlerContext) {
      const id = requireUuid(req.id);
      const existing = await store().alert(id);
      if (!existing) throw new NotFoundError(`alert ${id} not found`);
      if (existing.state === "resolved") throw new FailedPreconditionError(`alert ${id} is resolved; only firing alerts can be acknowledged`);
      return { alert: toAlert((await store().acknowledge(id, principalOf(ctx).name))!) };
    },
  };
}
