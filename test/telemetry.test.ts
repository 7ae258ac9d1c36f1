/**
 * Traces and metrics: one trace from AddJob through each attempt to the provider call (captured in
 * memory, and by a real OTLP/HTTP receiver decoding the protobuf), RPC spans with the semantic
 * conventions and no payloads, and Prometheus metrics on /metrics that move as jobs run.
 */
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { METRICS, prometheusName } from "../src/telemetry/instruments.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { startOtlpReceiver } from "./support/otlp-receiver.js";
import { payment } from "./support/payloads.js";
import { freePort, spawnService, waitForHttp } from "./support/process.js";
import { startTestService, type TestService, testEnv, tokens } from "./support/service.js";
import { eventually, waitForJob } from "./support/wait.js";

const db = testDatabase();
const exporter = new InMemorySpanExporter();
const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
let svc: TestService;

beforeAll(async () => {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  svc = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200" });
});
afterAll(async () => {
  await svc?.stop();
  await provider.shutdown();
  trace.disable();
  propagation.disable();
  context.disable();
  await db.drop();
});

const incoming = { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7" };
describe("traces (in memory)", () => {
  it("put AddJob, each attempt and the provider call in one trace, continuing the caller's", async () => {
    const jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const traced = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    // The caller's trace context arrives as a traceparent header.
    const { createClient } = await import("@connectrpc/connect");
    const { createGrpcTransport } = await import("@connectrpc/connect-node");
    const callerClient = createClient(
      JobService,
      createGrpcTransport({
        baseUrl: svc.baseUrl,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${tokens.serviceA}`);
            req.header.set("traceparent", `00-${incoming.traceId}-${incoming.spanId}-01`);
            return next(req);
          },
        ],
      }),
    );
    void traced;
    const { job } = await callerClient.addJob({
      type: "payment:process",
      payload: payment({ paymentMethod: "tok_flaky" }),
      options: { retryDelay: { seconds: 1n }, retryBackoff: false },
    });
    await waitForJob(jobs, job!.id, (j) => j.state === JobState.COMPLETED, "to complete");
    await eventually(
      async () => exporter.getFinishedSpans().filter((s) => s.name === "job payment:process" && s.attributes["job.id"] === job!.id).length === 2,
      "both attempts' spans",
    );

    const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === incoming.traceId);
    const add = spans.find((s) => s.name === "jobs.v1.JobService/AddJob")!;
    expect(add.parentSpanContext?.spanId).toBe(incoming.spanId);
    expect(add.attributes).toMatchObject({ "rpc.system": "grpc", "rpc.service": "jobs.v1.JobService", "rpc.method": "AddJob", "rpc.grpc.status_code": 0 });
    const attempts = spans
      .filter((s) => s.name === "job payment:process")
      .sort((a, b) => Number(a.attributes["job.attempt"]) - Number(b.attributes["job.attempt"]));
    expect(attempts.map((s) => [s.attributes["job.attempt"], s.attributes["job.outcome"]])).toEqual([
      [1, "retried"],
      [2, "completed"],
    ]);
    for (const a of attempts) {
      expect(a.parentSpanContext?.spanId).toBe(add.spanContext().spanId);
      expect(a.attributes).toMatchObject({ "job.queue": "money", "job.type": "payment:process", "job.id": job!.id });
    }
    const calls = spans.filter((s) => s.name === "sandbox.charge");
    expect(calls).toHaveLength(2);
    expect(calls.map((c) => c.parentSpanContext?.spanId).sort()).toEqual(attempts.map((a) => a.spanContext().spanId).sort());
    // No payloads in spans.
    const everything = JSON.stringify(exporter.getFinishedSpans().map((s) => s.attributes));
    expect(everything).not.toContain("tok_flaky");
    expect(everything).not.toContain("cus_1");
  });

  it("end a stream's span when the stream ends", async () => {
    const jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment() });
    await waitForJob(jobs, job!.id, (j) => j.state === JobState.COMPLETED, "to complete");
    for await (const _ of jobs.watchJob({ id: job!.id }));
    await eventually(async () => exporter.getFinishedSpans().some((s) => s.name === "jobs.v1.JobService/WatchJob"), "the watch span");
    const watch = exporter.getFinishedSpans().find((s) => s.name === "jobs.v1.JobService/WatchJob")!;
    expect(watch.attributes["rpc.grpc.status_code"]).toBe(0);
  });
});

describe("traces over OTLP/HTTP, and metrics", () => {
  it("serve Prometheus text on /metrics that moves as jobs run", async () => {
    const scrape = async () => {
      const text = await (await fetch(`${svc.baseUrl}/metrics`)).text();
      // Summed over the other labels (e.g. every outcome).
      const value = (name: string, labels: string) =>
        text
          .split("\n")
          .filter((l) => l.startsWith(`${name}{`) && l.includes(labels))
          .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(" ") + 1)), 0);
      return { text, value };
    };
    const before = await scrape();
    const labels = 'job_queue="money",job_type="payment:process"';
    const completedBefore = before.value("queue_service_jobs_completed_total", labels);
    const jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    for (let i = 0; i < 3; i++) {
      const { job } = await jobs.addJob({ type: "payment:process", payload: payment() });
      await waitForJob(jobs, job!.id, (j) => j.state === JobState.COMPLETED, "to complete");
    }
    const after = await scrape();
    expect(after.value("queue_service_jobs_completed_total", labels)).toBe(completedBefore + 3);
    expect(after.value("queue_service_jobs_added_total", labels)).toBeGreaterThanOrEqual(3);
    expect(after.value("queue_service_job_run_duration_seconds_count", labels)).toBeGreaterThanOrEqual(3);
    expect(after.text).toMatch(/^# TYPE queue_service_job_wait_duration_seconds histogram$/m);
    expect(after.text).toMatch(/^queue_service_queue_depth\{job_queue="money",job_type="payment:process"/m);
    expect(after.text).toMatch(/^rpc_server_call_duration_seconds_count\{[^}]*rpc_method="AddJob"/m);
    expect(after.text).toMatch(/^queue_service_connections_open(\{[^}]*\})? [1-9]\d*/m);
    expect(after.text).toMatch(/^queue_service_streams_open(\{[^}]*\})? \d+/m);
    // The metrics recorded so far appear by their documented Prometheus names (a metric with no data
    // point yet, such as failures here, is not exported).
    for (const m of [
      METRICS.jobsAdded,
      METRICS.jobsStarted,
      METRICS.jobsCompleted,
      METRICS.runDuration,
      METRICS.waitDuration,
      METRICS.rpcDuration,
      METRICS.queueDepth,
      METRICS.queueActive,
      METRICS.streamsOpen,
      METRICS.connectionsOpen,
    ]) {
      expect(after.text, m.name).toContain(`# TYPE ${prometheusName(m)} ${m.kind === "histogram" ? "histogram" : m.kind === "counter" ? "counter" : "gauge"}`);
    }
  });

  it("reach a real OTLP receiver as protobuf: nothing from an idle replica; AddJob, the run and PostgreSQL queries in one trace", async () => {
    await svc.stop(); // the process below must be the only one running the job
    const receiver = await startOtlpReceiver();
    const port = await freePort();
    const proc = spawnService(
      testEnv(db, {
        PORT: String(port),
        WORKERS_ENABLED: "true",
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
        OTEL_BSP_SCHEDULE_DELAY: "100",
        OTEL_METRIC_EXPORT_INTERVAL: "500",
        OTEL_SERVICE_NAME: "queue-service-test",
      }),
    );
    try {
      await waitForHttp(`${proc.baseUrl}/readyz`, (s) => s === 200);
      // Idle for 10 s, its workers polling every job type, its maintenance and listeners running:
      // no span at all (spans are exported within 100 ms here).
      await new Promise((r) => setTimeout(r, 10_000));
      expect(receiver.spans.map((s) => s.name)).toEqual([]);
      const jobs = client(JobService, proc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
      const { job } = await jobs.addJob({ type: "payment:process", payload: payment() });
      await waitForJob(jobs, job!.id, (j) => j.state === JobState.COMPLETED, "to complete");
      const add = await eventually(async () => receiver.spans.find((s) => s.name === "jobs.v1.JobService/AddJob"), "the AddJob span");
      const run = await eventually(
        async () => receiver.spans.find((s) => s.name === "job payment:process" && s.attributes["job.id"] === job!.id),
        "the run span",
      );
      expect(run.traceId).toBe(add.traceId);
      expect(run.parentSpanId).toBe(add.spanId);
      expect(add.service).toBe("queue-service-test");
      expect(add.kind).toBe("SPAN_KIND_SERVER");
      const queries = await eventually(
        async () => {
          const q = receiver.spans.filter((s) => s.traceId === add.traceId && s.name.startsWith("pg.query"));
          return q.length > 0 ? q : undefined;
        },
        `PostgreSQL spans in the trace (got: ${[...new Set(receiver.spans.map((s) => s.name))].join(", ")})`,
      );
      expect(queries.length).toBeGreaterThan(0);
      expect(receiver.contentTypes).toContain("application/x-protobuf");
      await eventually(async () => receiver.metricNames.has("queue_service.jobs.completed"), "metrics over OTLP", 10_000);
      // Every span of the run belongs to a trace that began with an RPC: no root span of polling.
      const roots = receiver.spans.filter((s) => s.parentSpanId === "");
      expect([...new Set(roots.map((s) => s.name))].filter((n) => !n.startsWith("jobs.v1.") && n !== "enqueue batch")).toEqual([]);
    } finally {
      await proc.stop("SIGTERM");
      await receiver.close();
    }
  });
});
