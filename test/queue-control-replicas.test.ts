/**
 * Queue control across two service processes on one database: a pause through one stops starts on
 * the other at once and survives a restart of both; a processing rate limit holds for both together.
 */
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { MonitoringService, RateLimitScope } from "../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { payment } from "./support/payloads.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { tokens } from "./support/service.js";
import { waitForJob } from "./support/wait.js";

const db = testDatabase();
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await db.drop();
});

const replica = (port?: number) =>
  startReplica(db, processes, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200", ...(port ? { PORT: String(port) } : {}) });

const api = (p: ServiceProcess) => ({
  jobs: client(JobService, p.baseUrl, { protocol: "grpc", token: tokens.admin }),
  queues: client(QueueService, p.baseUrl, { protocol: "grpc", token: tokens.admin }),
  monitoring: client(MonitoringService, p.baseUrl, { protocol: "grpc", token: tokens.admin }),
});

const startedCount = async (ids: string[]) =>
  (await db.query(`SELECT count(*)::int AS n FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[]) AND started_on IS NOT NULL`, [ids])).rows[0]!.n as number;

describe("two replicas", () => {
  it("pause through one stops starts on the other; resume lets them run; the pause survives a restart of both", async () => {
    let a = await replica();
    let b = await replica();
    await api(a).queues.pauseQueue({ name: "money" });
    const { job } = await api(b).jobs.addJob({ type: "payment:process", payload: payment() });
    await new Promise((r) => setTimeout(r, 3000));
    expect(await startedCount([job!.id])).toBe(0);

    const portA = a.port;
    const portB = b.port;
    expect((await a.stop("SIGTERM")).code).toBe(0);
    expect((await b.stop("SIGTERM")).code).toBe(0);
    a = await replica(portA);
    b = await replica(portB);
    expect((await api(b).queues.listQueues({})).queues.find((q) => q.name === "money")!.paused).toBe(true);
    const { job: second } = await api(a).jobs.addJob({ type: "payment:process", payload: payment() });
    await new Promise((r) => setTimeout(r, 3000));
    expect(await startedCount([job!.id, second!.id])).toBe(0);

    await api(b).queues.resumeQueue({ name: "money" });
    for (const id of [job!.id, second!.id]) await waitForJob(api(a).jobs, id, (j) => j.state === JobState.COMPLETED, "to complete after resume", 10_000);
    await Promise.all([a.stop("SIGTERM"), b.stop("SIGTERM")]);
  }, 90_000);

  it("hold a processing rate limit together", async () => {
    const a = await replica();
    const b = await replica();
    const limit = 5;
    await api(a).monitoring.setRateLimit({ rateLimit: { scope: RateLimitScope.JOB_TYPE, key: "payment:process", limit, interval: durationFromMs(1000) } });
    const ids: string[] = [];
    const { results } = await api(b).jobs.addJobs({ jobs: Array.from({ length: 30 }, () => ({ type: "payment:process", payload: payment() })) });
    ids.push(...results.map((r) => r.job!.id));
    await waitForJob(api(a).jobs, ids[ids.length - 1]!, () => true, "to exist");
    const deadline = Date.now() + 20_000;
    while ((await startedCount(ids)) < ids.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    const { rows } = await db.query<{ t: number }>(
      `SELECT extract(epoch FROM started_on) * 1000 AS t FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[]) ORDER BY started_on`,
      [ids],
    );
    const starts = rows.map((r) => Number(r.t));
    expect(starts).toHaveLength(30);
    // A token bucket of `limit` tokens refilled at `limit` per second: in any span of k seconds at most
    // limit * (k + 1) starts (a full bucket plus the refill). Tolerance: 1 start for clock granularity.
    for (let i = 0; i < starts.length; i++) {
      for (const k of [1, 2, 3]) {
        const within = starts.filter((t) => t >= starts[i]! && t < starts[i]! + k * 1000).length;
        expect(within, `starts within ${k} s of start ${i}`).toBeLessThanOrEqual(limit * (k + 1) + 1);
      }
    }
    const spanSeconds = (starts[starts.length - 1]! - starts[0]!) / 1000;
    // 30 jobs at 5/s after a burst of 5: about 5 s; well under the 30/2 = 15 s a broken (halved) limit would take.
    expect(spanSeconds).toBeGreaterThan((30 - limit) / limit - 1);
    expect(spanSeconds).toBeLessThan(10);
    await Promise.all([a.stop("SIGTERM"), b.stop("SIGTERM")]);
  }, 90_000);
});
