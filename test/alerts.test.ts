/**
 * Alerts: rules are validated and managed; a depth alert on a paused queue fires, notifies its
 * webhook once and sends one email, is acknowledged, and resolves after the queue is resumed; when
 * the evaluating replica dies, another takes over.
 */
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { AlertMetric, AlertState, MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure, violations } from "./support/errors.js";
import { payment } from "./support/payloads.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";
import { startWebhookServer, type WebhookServer } from "./support/webhook.js";

const db = testDatabase();
let hook: WebhookServer;
let svc: TestService;
let monitoring: ReturnType<typeof client<typeof MonitoringService>>;

beforeAll(async () => {
  hook = await startWebhookServer();
  svc = await startTestService(db, {
    WORKERS_ENABLED: "true",
    WORKER_POLL_INTERVAL_MS: "200",
    ALERT_EVALUATION_INTERVAL_MS: "300",
    ALERT_WEBHOOK_ALLOWED_HOSTS: hook.host,
  });
  monitoring = client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
});
afterAll(async () => {
  await svc?.stop();
  await hook?.close();
  await db.drop();
});

const depthRule = (name: string, extra: Record<string, unknown> = {}) => ({
  rule: {
    name,
    metric: AlertMetric.QUEUE_DEPTH,
    queue: "money",
    threshold: 1,
    targets: [
      { target: { case: "webhook" as const, value: { url: hook.url } } },
      { target: { case: "email" as const, value: { to: ["oncall@example.com"] } } },
    ],
    description: "money queue backing up",
    ...extra,
  },
});

describe("alert rules", () => {
  it("are validated, created, listed, updated by field mask and deleted", async () => {
    const bad = await failure(
      monitoring.createAlertRule({
        rule: {
          name: "",
          metric: AlertMetric.RUN_TIME_PERCENTILE,
          queue: "nope",
          threshold: -1,
          targets: [{ target: { case: "webhook", value: { url: "http://evil.example/x" } } }],
        },
      }),
    );
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(
      violations(bad)
        .map((v) => v.field)
        .sort(),
    ).toEqual(["rule.name", "rule.percentile", "rule.queue", "rule.targets[0].webhook.url", "rule.threshold"]);
    const { rule } = await monitoring.createAlertRule(depthRule("depth-crud", { enabled: false }));
    expect(rule).toMatchObject({ name: "depth-crud", metric: AlertMetric.QUEUE_DEPTH, queue: "money", threshold: 1, enabled: false });
    expect(Number(rule!.window!.seconds)).toBe(300);
    expect((await failure(monitoring.createAlertRule(depthRule("depth-crud")))).code).toBe(Code.AlreadyExists);
    const { rule: updated } = await monitoring.updateAlertRule({
      rule: { id: rule!.id, threshold: 50, name: "ignored" },
      updateMask: { paths: ["threshold"] },
    });
    expect(updated).toMatchObject({ name: "depth-crud", threshold: 50 });
    const svcA = client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    expect((await svcA.listAlertRules({})).rules.map((r) => r.name)).toContain("depth-crud");
    expect((await failure(svcA.createAlertRule(depthRule("x")))).code).toBe(Code.PermissionDenied);
    await monitoring.deleteAlertRule({ id: rule!.id });
    expect((await failure(monitoring.deleteAlertRule({ id: rule!.id }))).code).toBe(Code.NotFound);
  });
});

describe("a depth alert on a paused queue", () => {
  it("fires, notifies once, is acknowledged, and resolves after resume", async () => {
    const queues = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
    const jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
    await queues.pauseQueue({ name: "money" });
    for (let i = 0; i < 3; i++) await jobs.addJob({ type: "payment:process", payload: payment() });
    const { rule } = await monitoring.createAlertRule(depthRule("money-depth"));
    const firing = await eventually(
      async () => (await monitoring.listAlerts({ state: AlertState.FIRING })).alerts.find((a) => a.ruleId === rule!.id),
      "the alert to fire",
    );
    expect(firing).toMatchObject({ ruleName: "money-depth", value: 3, threshold: 1, summary: "queue money: queue depth 3 > 1" });
    await eventually(async () => hook.received.length === 1, "the webhook");
    expect(hook.received[0]!.body.alert).toMatchObject({ id: firing.id, rule: "money-depth", value: 3, state: "firing", queue: "money" });
    // Several more evaluations: still one notification, one email job.
    await new Promise((r) => setTimeout(r, 1500));
    expect(hook.received).toHaveLength(1);
    const emails = await jobs.listJobs({ idempotencyKey: `alert:${firing.id}` });
    expect(emails.jobs).toHaveLength(1);
    expect(emails.jobs[0]).toMatchObject({ type: "email:send", createdBy: "alerts" });
    expect((await monitoring.listAlerts({ state: AlertState.FIRING })).alerts.find((a) => a.id === firing.id)!.notified).toBe(true);

    const { alert: acked } = await monitoring.acknowledgeAlert({ id: firing.id });
    expect(acked).toMatchObject({ state: AlertState.ACKNOWLEDGED, acknowledgedBy: "admin" });
    expect(acked!.acknowledgedAt).toBeDefined();

    await queues.resumeQueue({ name: "money" });
    const resolved = await eventually(
      async () => (await monitoring.listAlerts({ state: AlertState.RESOLVED })).alerts.find((a) => a.id === firing.id),
      "the alert to resolve",
    );
    expect(resolved.resolvedAt).toBeDefined();
    expect(resolved.lastValue).toBeLessThanOrEqual(1);
    expect(hook.received).toHaveLength(1);
    expect((await failure(monitoring.acknowledgeAlert({ id: firing.id }))).code).toBe(Code.FailedPrecondition);
    await monitoring.deleteAlertRule({ id: rule!.id });
  });
});

describe("the alert evaluator", () => {
  it("moves to another replica when its leader dies", async () => {
    await svc.stop(); // only the two processes below evaluate
    const processes: ServiceProcess[] = [];
    try {
      for (let i = 0; i < 2; i++) await startReplica(db, processes, { ALERT_EVALUATION_INTERVAL_MS: "300", ALERT_WEBHOOK_ALLOWED_HOSTS: hook.host });
      const leads = (p: ServiceProcess) => p.output().includes("this replica now evaluates alert rules");
      const leader = await eventually(async () => processes.find(leads), "a leader");
      const follower = processes.find((p) => p !== leader)!;
      expect(leads(follower)).toBe(false);
      await leader.stop("SIGKILL");
      await eventually(async () => leads(follower), "the other replica to take over", 10_000);

      const m = client(MonitoringService, follower.baseUrl, { protocol: "grpc", token: tokens.admin });
      await client(QueueService, follower.baseUrl, { protocol: "grpc", token: tokens.admin }).pauseQueue({ name: "background" });
      await client(JobService, follower.baseUrl, { protocol: "grpc", token: tokens.admin }).addJobs({
        jobs: [
          { type: "analytics:aggregate", payload: {} },
          { type: "analytics:aggregate", payload: {} },
        ],
      });
      const before = hook.received.length;
      const { rule } = await m.createAlertRule({
        rule: {
          name: "background-depth",
          metric: AlertMetric.QUEUE_DEPTH,
          queue: "background",
          threshold: 1,
          window: durationFromMs(60_000),
          targets: [{ target: { case: "webhook", value: { url: hook.url } } }],
        },
      });
      await eventually(
        async () => (await m.listAlerts({ state: AlertState.FIRING })).alerts.find((a) => a.ruleId === rule!.id),
        "the alert to fire on the new leader",
      );
      await eventually(async () => hook.received.length === before + 1, "its webhook");
    } finally {
      await Promise.all(processes.map((p) => p.stop("SIGKILL")));
    }
  });
});
