/**
 * A running money job: cancelled before its side effect it ends CANCELLED with nothing charged; a
 * handler whose lease was taken by another attempt is aborted and settles nothing (fencing).
 * One slow replica (each sandbox call takes 6 s) does all the work here.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Job, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { payment } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { waitForJob } from "./support/wait.js";

const db = testDatabase();
let slow: TestService;
let c: ReturnType<typeof client<typeof JobService>>;

beforeAll(async () => {
  slow = await startTestService(db, { WORKERS_ENABLED: "true", SANDBOX_LATENCY_MS: "6000", WORKER_POLL_INTERVAL_MS: "200" });
  c = client(JobService, slow.baseUrl, { protocol: "grpc", token: tokens.admin });
});
afterAll(async () => {
  await slow?.stop();
  await db.drop();
});

const finished = (j: Job) => [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED].includes(j.state);
const ledger = async (root: string) => (await db.query(`SELECT kind FROM "${db.schema}".sandbox_ledger WHERE root_job_id = $1`, [root])).rows;

describe("cancel of a running job (sandbox)", () => {
  it("stops it before the charge: CANCELLED and nothing charged", async () => {
    const { job } = await c.addJob({ type: "payment:process", payload: payment() });
    await waitForJob(c, job!.id, (j) => j.state === JobState.ACTIVE, "to start");
    const { job: requested } = await c.cancelJob({ id: job!.id });
    expect(requested!.cancelRequested).toBe(true);
    const done = await waitForJob(c, job!.id, finished, "to stop", 3000);
    expect(done.state).toBe(JobState.CANCELLED);
    expect(done.lastError?.reason).toBe("CANCELLED");
    expect(await ledger(job!.rootJobId)).toEqual([]);
    const { rows } = await db.query(`SELECT type::text FROM "${db.schema}".job_event WHERE job_id = $1 ORDER BY xid, seq`, [job!.id]);
    expect(rows.map((r) => r.type)).toEqual(["created", "started", "cancel_requested", "cancelled"]);
  });
});

describe("fencing", () => {
  it("aborts a handler whose lease was taken and lets it settle nothing", async () => {
    const { job } = await c.addJob({ type: "payment:process", payload: payment() });
    await waitForJob(c, job!.id, (j) => j.state === JobState.ACTIVE, "to start");
    // The supervisor (or another worker) took the job back: the attempt is no longer this worker's.
    const taken = await db.query(
      `UPDATE "${db.bossSchema}".job SET state = 'retry', start_after = now() + interval '1 hour' WHERE id = $1 AND state = 'active'`,
      [job!.id],
    );
    expect(taken.rowCount).toBe(1);
    // The next heartbeat (every 3 s) finds the lease gone and aborts the handler; had it not, its
    // charge would be in the ledger 6 s after the start.
    await new Promise((r) => setTimeout(r, 8000));
    const { job: after } = await c.getJob({ id: job!.id });
    expect(after!.state).toBe(JobState.RETRY);
    expect(await ledger(job!.rootJobId)).toEqual([]);
    const { rows } = await db.query(
      `SELECT type::text FROM "${db.schema}".job_event WHERE job_id = $1 AND type IN ('completed', 'failed', 'retry_scheduled', 'cancelled')`,
      [job!.id],
    );
    expect(rows).toEqual([]);
  });
});
