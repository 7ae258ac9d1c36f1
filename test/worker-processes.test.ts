/**
 * External workers as processes of their own (the TypeScript SDK), against two replicas on one
 * database: a worker killed with SIGKILL while holding leases loses them, its jobs run again on
 * another worker after the lease expires and each completes once, and a completion from the dead
 * lease is refused with LEASE_LOST; a processing rate limit holds across workers on both replicas;
 * a pause reaches the workers of every replica.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { MonitoringService, RateLimitScope } from "../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { WorkerService } from "../gen/jobs/v1/worker_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, errorInfo, failure } from "./support/errors.js";
import { worstWindow } from "./support/rate-windows.js";
import { runAlone } from "./support/run-alone.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

runAlone();

const root = fileURLToPath(new URL("..", import.meta.url));
const db = testDatabase();
let a: TestService;
let b: TestService;
const children: ChildProcess[] = [];
const api = (svc: TestService, token: string = tokens.admin) => ({
  jobs: client(JobService, svc.baseUrl, { protocol: "grpc", token }),
  queues: client(QueueService, svc.baseUrl, { protocol: "grpc", token }),
  monitoring: client(MonitoringService, svc.baseUrl, { protocol: "grpc", token }),
  workers: client(WorkerService, svc.baseUrl, { protocol: "grpc", token }),
});

beforeAll(async () => {
  a = await startTestService(db);
  b = await startTestService(db);
  await api(a).queues.createQueue({ queue: { name: "ext", policy: { retryLimit: 5, retryDelay: { seconds: 0n }, retryBackoff: false } } });
  for (const name of ["ext:crash", "ext:limited", "ext:paused"])
    await api(a).queues.registerJobType({ jobType: { name, queue: "ext", payloadSchema: { type: "object" }, workers: ["wrk-a"] } });
});
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await a?.stop();
  await b?.stop();
  await db.drop();
});

/** An SDK worker process on `svc`. */
function worker(svc: TestService, env: Record<string, string>) {
  // Node itself (not the tsx wrapper, whose child would survive a SIGKILL of the wrapper).
  const child = spawn(process.execPath, ["--import", "tsx", "test/support/sdk-worker.ts"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", QS_URL: svc.baseUrl, QS_TOKEN: tokens.workerA, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return { child, output: () => out, exited, started: () => out.match(/^STARTED /gm)?.length ?? 0 };
}

const completions = async (ids: string[]) =>
  (
    await db.query<{ id: string; n: number }>(
      `SELECT job_id::text AS id, count(*)::int AS n FROM "${db.schema}".job_event WHERE type = 'completed' AND job_id = ANY($1::uuid[]) GROUP BY 1`,
      [ids],
    )
  ).rows;

describe("external worker processes", () => {
  it("a worker killed holding leases: its jobs run again elsewhere once the leases expire, each completes once", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await api(a).jobs.addJob({ type: "ext:crash", payload: { n: i } })).job!.id);
    const doomed = worker(a, { QS_TYPES: "ext:crash", QS_MODE: "hang", QS_CONCURRENCY: "5" });
    await eventually(async () => doomed.started() === 5, "the worker to hold all five jobs", 30_000);
    // Another attempt the test holds itself, to send a late completion with.
    const { job: extra } = await api(a).jobs.addJob({ type: "ext:crash", payload: { n: 99 } });
    const { jobs: held } = await api(a, tokens.workerA).workers.fetchJobs({ types: ["ext:crash"], wait: { seconds: 5n } });
    expect(held.map((j) => j.job!.id)).toEqual([extra!.id]);
    doomed.child.kill("SIGKILL");
    await doomed.exited;

    const rescuer = worker(b, { QS_TYPES: "ext:crash", QS_NAME: "rescuer" });
    const all = [...ids, extra!.id];
    await eventually(async () => (await completions(all)).length === all.length, "every job to complete on the other worker", 90_000, 500);
    expect((await completions(all)).every((c) => c.n === 1)).toBe(true);
    for (const id of all) {
      const job = (await api(a).jobs.getJob({ id })).job!;
      expect(job).toMatchObject({ state: JobState.COMPLETED, retryCount: 1, result: { by: "rescuer" } });
      expect(job.lastError?.reason ?? "").toBe("");
    }
    const late = await failure(api(b, tokens.workerA).workers.completeJob({ leaseToken: held[0]!.lease!.token, result: { by: "ghost" } }));
    expect(late.code).toBe(Code.FailedPrecondition);
    expect(errorInfo(late)?.reason).toBe("LEASE_LOST");
    expect((await api(a).jobs.getJob({ id: extra!.id })).job!.result).toEqual({ by: "rescuer" });
    rescuer.child.kill("SIGTERM");
    await rescuer.exited;
  }, 150_000);

  it("a processing rate limit holds across workers on two replicas", async () => {
    const LIMIT = 5;
    await api(a).monitoring.setRateLimit({ rateLimit: { scope: RateLimitScope.JOB_TYPE, key: "ext:limited", limit: LIMIT, interval: durationFromMs(1000) } });
    // One job at a time, 300 ms each: a worker alone runs at most ~3.3 a second, the two together
    // more than the limit. So the limit binds, and neither worker can take every token.
    const slow = { QS_TYPES: "ext:limited", QS_MODE: "slow", QS_SLOW_MS: "300", QS_CONCURRENCY: "1" };
    const workers = [worker(a, slow), worker(b, slow)];
    await eventually(
      async () => a.service.engine!.parts.external.waiting() >= 1 && b.service.engine!.parts.external.waiting() >= 1,
      "both workers to wait in FetchJobs",
      30_000,
    );
    const ids = (await api(a).jobs.addJobs({ jobs: Array.from({ length: 30 }, (_, i) => ({ type: "ext:limited", payload: { i } })) })).results.map(
      (r) => r.job!.id,
    );
    await eventually(async () => (await completions(ids)).length === ids.length, "every limited job to complete", 60_000, 250);
    const { rows } = await db.query<{ t: Date }>(
      `SELECT occurred_at AS t FROM "${db.schema}".job_event WHERE type = 'started' AND job_id = ANY($1::uuid[]) ORDER BY occurred_at`,
      [ids],
    );
    const starts = rows.map((r) => r.t.getTime());
    for (const k of [1, 2, 3]) {
      const { within, allowed } = worstWindow(starts, LIMIT, k);
      expect(within, `starts within ${k} s`).toBeLessThanOrEqual(allowed);
    }
    // Both replicas' workers took part (each prints the jobs it started).
    for (const w of workers) expect(w.started()).toBeGreaterThan(0);
    for (const w of workers) w.child.kill("SIGTERM");
    await Promise.all(workers.map((w) => w.exited));
  }, 90_000);

  it("a pause reaches the workers of every replica", async () => {
    await api(a).queues.pauseQueue({ name: "ext" });
    try {
      const { job } = await api(a).jobs.addJob({ type: "ext:paused", payload: {} });
      const w = worker(b, { QS_TYPES: "ext:paused" });
      await eventually(async () => w.output().includes("READY"), "the worker to start", 30_000);
      await new Promise((r) => setTimeout(r, 2000));
      expect(w.started()).toBe(0);
      await api(b).queues.resumeQueue({ name: "ext" });
      await eventually(async () => (await completions([job!.id])).length === 1, "the job to run after the resume", 30_000);
      w.child.kill("SIGTERM");
      await w.exited;
    } finally {
      await api(a).queues.resumeQueue({ name: "ext" });
    }
  }, 60_000);
});
