/**
 * Real processes: a worker killed with SIGKILL in the middle of a payment loses nothing (another
 * replica completes the job within 30 s, charged once), and SIGTERM lets running jobs finish before
 * the process exits 0.
 */
import { afterAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { payment } from "./support/payloads.js";
import { freePort, spawnService, waitForHttp, type ServiceProcess } from "./support/process.js";
import { testEnv, tokens } from "./support/service.js";
import { waitForJob } from "./support/wait.js";

const db = testDatabase();
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await db.drop();
});

async function replica(env: Record<string, string>): Promise<ServiceProcess> {
  const port = await freePort();
  const p = spawnService(testEnv(db, { PORT: String(port), WORKER_POLL_INTERVAL_MS: "250", ...env }));
  processes.push(p);
  await waitForHttp(`${p.baseUrl}/readyz`, (s) => s === 200);
  return p;
}

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
  it("lets running jobs finish, then exits 0 with nothing left active", async () => {
    const p = await replica({ WORKERS_ENABLED: "true", SANDBOX_LATENCY_MS: "1500", SHUTDOWN_GRACE_MS: "8000" });
    const api = client(JobService, p.baseUrl, { protocol: "grpc", token: tokens.admin });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await api.addJob({ type: "payment:process", payload: payment() })).job!.id);
    for (const id of ids) await waitForJob(api, id, (j) => j.state === JobState.ACTIVE, "to start");
    const { code } = await p.stop("SIGTERM");
    expect(code, p.output()).toBe(0);
    const { rows } = await db.query(`SELECT state::text, count(*)::int AS n FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[]) GROUP BY state`, [ids]);
    expect(rows).toEqual([{ state: "completed", n: 5 }]);
  });
});
