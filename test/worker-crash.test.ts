/**
 * Real processes: a worker killed with SIGKILL in the middle of a payment loses nothing (another
 * replica completes the job within 30 s, charged once); SIGTERM under load lets running jobs finish
 * before the process exits 0, leaves nothing active and the backlog queued for the next replica; and
 * jobs still running when the grace period ends are interrupted before their charge and retried.
 */
import { afterAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { bossQueueName } from "../src/engine/registry.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { jobHistories, unsoundHistories } from "./support/job-history.js";
import { payment } from "./support/payloads.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { runAlone } from "./support/run-alone.js";
import { tokens } from "./support/service.js";
import { eventually, waitForJob } from "./support/wait.js";

runAlone();

const db = testDatabase();
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await db.drop();
});

const replica = (env: Record<string, string>) => startReplica(db, processes, { WORKER_POLL_INTERVAL_MS: "250", ...env });

const ledger = async (root: string) => (await db.query(`SELECT kind FROM "${db.schema}".sandbox_ledger WHERE root_job_id = $1`, [root])).rows;

describe("a killed worker", () => {
  it("loses no job: another replica completes it within 30 s, charged once", async () => {
    const a = await replica({ WORKERS_ENABLED: "true", SANDBOX_LATENCY_MS: "3000" });
    const api = client(JobService, a.baseUrl, { protocol: "grpc", token: tokens.admin });
    const { job } = await api.addJob({ type: "payment:process", payload: payment() });
    await waitForJob(api, job!.id, (j) => j.state === JobState.ACTIVE, "to start on replica A");
    const b = await replica({ WORKERS_ENABLED: "true", SANDBOX_LATENCY_MS: "1000" });
    const killedAt = Date.now();
    await a.stop("SIGKILL");
    const apiB = client(JobService, b.baseUrl, { protocol: "grpc", token: tokens.admin });
    const done = await waitForJob(apiB, job!.id, (j) => j.state === JobState.COMPLETED, "to complete on replica B", 30_000);
    const rescueMs = Date.now() - killedAt;
    expect(rescueMs).toBeLessThan(30_000);
    expect(done.retryCount).toBe(1);
    expect(await ledger(job!.rootJobId)).toHaveLength(1);
    const { rows } = await db.query(`SELECT type::text FROM "${db.schema}".job_event WHERE job_id = $1 ORDER BY xid, seq`, [job!.id]);
    expect(rows.map((r) => r.type)).toEqual(["created", "started", "expired", "retry_scheduled", "started", "completed"]);
    await b.stop("SIGTERM");
  }, 60_000);
});

describe("SIGTERM under work", () => {
  const paymentQueue = bossQueueName("money", "payment:process");
  const states = async (ids: string[]) =>
    (
      await db.query<{ id: string; state: string; retry_count: number; reason: string | null }>(
        `SELECT id::text, state::text, retry_count, output->>'reason' AS reason FROM "${db.bossSchema}".job WHERE name = $1 AND id = ANY($2::uuid[])`,
        [paymentQueue, ids],
      )
    ).rows;
  const charged = async (ids: string[]) =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".sandbox_ledger WHERE root_job_id = ANY($1::uuid[])`, [ids])).rows[0]!.n;
  const addPayments = async (api: ReturnType<typeof client<typeof JobService>>, n: number) =>
    (
      await api.addJobs({
        jobs: Array.from({ length: n }, () => ({ type: "payment:process", payload: payment(), options: { retryDelay: { seconds: 1n }, retryBackoff: false } })),
      })
    ).results.map((r) => r.job!.id);

  it("lets running jobs finish, then exits 0 with nothing left active; the backlog waits for the next replica", async () => {
    const grace = 8000;
    const p = await replica({ WORKERS_ENABLED: "true", SANDBOX_LATENCY_MS: "1000", MONEY_CONCURRENCY: "10", SHUTDOWN_GRACE_MS: String(grace) });
    const api = client(JobService, p.baseUrl, { protocol: "grpc", token: tokens.admin });
    const ids = await addPayments(api, 200);
    // Steady state: every slot busy, attempts at every stage of their second, a backlog queued.
    await eventually(async () => (await states(ids)).filter((j) => j.state === "completed").length >= 20, "20 payments to complete");
    const signalledAt = Date.now();
    const { code, ms } = await p.stop("SIGTERM");
    expect(code, p.output()).toBe(0);
    // The running jobs needed at most their latency: nothing waited for the grace period to end.
    expect(ms).toBeLessThan(grace);

    const after = await states(ids);
    const byState: Record<string, number> = {};
    for (const j of after) byState[j.state] = (byState[j.state] ?? 0) + 1;
    expect(Object.keys(byState).sort(), JSON.stringify(byState)).toEqual(["completed", "created"]);
    expect(after.filter((j) => j.retry_count > 0)).toEqual([]);
    const completed = after.filter((j) => j.state === "completed").map((j) => j.id);
    const queued = after.filter((j) => j.state === "created").map((j) => j.id);
    expect(queued.length).toBeGreaterThan(0);
    expect(await charged(completed)).toBe(completed.length);
    expect(await charged(queued)).toBe(0);
    const histories = await jobHistories(db.query, db.schema, completed);
    expect(unsoundHistories(histories)).toEqual({});
    // The jobs running at the signal finished (a whole slot's worth of them, not just one).
    const finishedAfterSignal = [...histories.values()].filter(
      (events) => events.find((e) => e.type === "started")!.occurred_at.getTime() < signalledAt && events.at(-1)!.occurred_at.getTime() >= signalledAt,
    );
    expect(finishedAfterSignal.length).toBeGreaterThanOrEqual(5);

    // The next replica takes the backlog: nothing was lost, nothing runs twice.
    const next = await replica({ WORKERS_ENABLED: "true", MONEY_CONCURRENCY: "20" });
    await eventually(async () => (await states(ids)).every((j) => j.state === "completed"), "the backlog to complete on the next replica", 30_000, 100);
    expect(await charged(ids)).toBe(ids.length);
    expect(unsoundHistories(await jobHistories(db.query, db.schema, ids))).toEqual({});
    console.info(
      `SIGTERM under load: exit 0 after ${ms} ms; ${completed.length} completed (${finishedAfterSignal.length} of them finishing after the signal), ${queued.length} left queued`,
    );
    expect((await next.stop("SIGTERM")).code).toBe(0);
  }, 90_000);

  it("interrupts jobs still running when the grace period ends: retried elsewhere, never charged twice", async () => {
    const grace = 1000;
    const p = await replica({ WORKERS_ENABLED: "true", SANDBOX_LATENCY_MS: "20000", MONEY_CONCURRENCY: "5", SHUTDOWN_GRACE_MS: String(grace) });
    const api = client(JobService, p.baseUrl, { protocol: "grpc", token: tokens.admin });
    const ids = await addPayments(api, 5);
    for (const id of ids) await waitForJob(api, id, (j) => j.state === JobState.ACTIVE, "to start");
    const { code, ms } = await p.stop("SIGTERM");
    expect(code, p.output()).toBe(0);
    // The grace period, then at most the 2 s the dispatcher gives aborted handlers to settle, and the rest of the stop.
    expect(ms).toBeGreaterThanOrEqual(grace);
    expect(ms).toBeLessThan(grace + 5000);
    const after = await states(ids);
    expect(after.map((j) => [j.state, j.reason])).toEqual(ids.map(() => ["retry", "INTERRUPTED"]));
    console.info(`SIGTERM past the grace period (${grace} ms): exit 0 after ${ms} ms, ${ids.length} running jobs interrupted and retried`);
    expect(await charged(ids)).toBe(0);

    const next = await replica({ WORKERS_ENABLED: "true" });
    await eventually(
      async () => (await states(ids)).every((j) => j.state === "completed"),
      "the interrupted payments to complete on the next replica",
      20_000,
      100,
    );
    expect((await states(ids)).map((j) => j.retry_count)).toEqual(ids.map(() => 1));
    expect(await charged(ids)).toBe(ids.length);
    const histories = await jobHistories(db.query, db.schema, ids);
    expect(unsoundHistories(histories)).toEqual({});
    expect([...histories.values()].map((events) => events.map((e) => e.type))).toEqual(
      ids.map(() => ["created", "started", "retry_scheduled", "started", "completed"]),
    );
    expect((await next.stop("SIGTERM")).code).toBe(0);
  }, 60_000);
});
