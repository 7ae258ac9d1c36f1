/**
 * A real Prometheus (Debian's package) scrapes /metrics and can query the job counters, histograms
 * (by their conventional `_seconds` names) and the replica's gauges.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { skipWithout } from "./support/external-tools.js";
import { payment } from "./support/payloads.js";
import { freePort } from "./support/process.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually, waitForJob } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
const dir = mkdtempSync(join(tmpdir(), "qs-prometheus-"));

beforeAll(async () => {
  svc = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200" });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(skipWithout("prometheus"))("Prometheus", () => {
  it("scrapes /metrics and answers queries on the job counters", async () => {
    const port = await freePort();
    writeFileSync(
      join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "scrape_configs:",
        "  - job_name: queue-service",
        "    metrics_path: /metrics",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${svc.service.port}"]`,
      ].join("\n"),
    );
    const prometheus = spawn(
      "prometheus",
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: "ignore" },
    );
    const exited = new Promise((r) => prometheus.once("exit", r));
    try {
      const jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
      for (let i = 0; i < 2; i++) {
        const { job } = await jobs.addJob({ type: "payment:process", payload: payment() });
        await waitForJob(jobs, job!.id, (j) => j.state === JobState.COMPLETED, "to complete");
      }
      const query = async (q: string) => {
        try {
          const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
          return ((await res.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data.result;
        } catch {
          return [];
        }
      };
      const up = await eventually(
        async () => (await query('up{job="queue-service"}')).find((r) => r.value[1] === "1"),
        "Prometheus to scrape the service",
        30_000,
        250,
      );
      expect(up.metric.instance).toBe(`127.0.0.1:${svc.service.port}`);
      const completed = await eventually(
        async () => (await query('queue_service_jobs_completed_total{job_type="payment:process"}')).find((r) => Number(r.value[1]) >= 2),
        "the completed counter",
        30_000,
        250,
      );
      expect(completed.metric).toMatchObject({ job_queue: "money", job_type: "payment:process" });
      const runs = await query("sum(queue_service_job_run_duration_seconds_count)");
      expect(Number(runs[0]!.value[1])).toBeGreaterThanOrEqual(2);
      // The conventional names work with the usual functions: a quantile from the buckets (in seconds).
      const quantile = 'histogram_quantile(0.99, sum by (le) (rate(queue_service_job_run_duration_seconds_bucket{job_type="payment:process"}[1m])))';
      await eventually(async () => (await query(quantile)).length === 1, "a run-time quantile (two scrapes)", 30_000, 250);
      expect(await query("queue_service_connections_open")).toEqual([expect.objectContaining({ value: [expect.any(Number), expect.stringMatching(/^\d+$/)] })]);
      expect(await query("queue_service_streams_open")).toHaveLength(1);
    } finally {
      prometheus.kill("SIGTERM");
      await exited;
    }
  });
});
