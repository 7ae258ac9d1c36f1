/**
 * Streams across replicas: a watch on one process follows a job processed by another, through a
 * supervisor expiry (its first worker killed) to its completion; a watch survives its listener
 * connection being killed from PostgreSQL; 1,000 concurrent watches on one process all end with
 * their final events.
 */
import { afterAll, describe, expect, it } from "vitest";
import { type JobEvent, JobEventType, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { payment } from "./support/payloads.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { runAlone } from "./support/run-alone.js";
import { tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

runAlone();

const db = testDatabase();
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await db.drop();
});

const replica = (env: Record<string, string>) => startReplica(db, processes, { WORKER_POLL_INTERVAL_MS: "250", ...env });

async function collect(stream: AsyncIterable<{ event?: JobEvent }>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const m of stream) out.push(m.event!);
  return out;
}
const types = (events: JobEvent[]) => events.map((e) => JobEventType[e.type]);

describe("streams across replicas", () => {
  it("follow a job another replica runs, through a supervisor expiry, to its end; and survive a killed listener", async () => {
    const watcher = await replica({ WORKERS_ENABLED: "false" });
    const worker = await replica({ WORKERS_ENABLED: "true", SANDBOX_LATENCY_MS: "60000" });
    const jobs = client(JobService, watcher.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment(), options: { retryDelay: { seconds: 1n }, retryBackoff: false } });
    const watching = collect(jobs.watchJob({ id: job!.id }));
    await eventually(
      async () => (await db.query(`SELECT 1 FROM "${db.bossSchema}".job WHERE id = $1 AND state = 'active'`, [job!.id])).rowCount === 1,
      "the worker to start the job",
    );

    // The watcher's listener connection dies; it reconnects by itself and the feed reads the log.
    const { rows } = await db.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'queue-service:listener' AND datname = current_database()`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(2);

    // The worker dies mid-job; the supervisor fails the attempt once its lease lapses, and a new
    // replica with a fast sandbox runs the retry.
    await worker.stop("SIGKILL");
    await replica({ WORKERS_ENABLED: "true" });
    const events = await watching;
    // The snapshot may have been read before or after the first start.
    const afterSnapshot = events[0]!.job!.state === JobState.ACTIVE ? ["EXPIRED"] : ["STARTED", "EXPIRED"];
    expect(types(events)).toEqual(["SNAPSHOT", ...afterSnapshot, "RETRY_SCHEDULED", "STARTED", "COMPLETED"]);
    expect(events.find((e) => e.type === JobEventType.EXPIRED)!.job!.lastError).toMatchObject({ reason: "LEASE_LOST" });
    expect(events[events.length - 1]!.job!.retryCount).toBe(1);
    await Promise.all(processes.splice(0).map((p) => p.stop("SIGTERM")));
  }, 90_000);

  it("end 1,000 concurrent watches with their final events", async () => {
    const watcher = await replica({ WORKERS_ENABLED: "false", MAX_STREAMS_PER_PRINCIPAL: "2000" });
    const admin = client(JobService, watcher.baseUrl, { protocol: "grpc", token: tokens.admin });
    const { results } = await admin.addJobs({ jobs: Array.from({ length: 1000 }, () => ({ type: "payment:process", payload: payment() })) });
    const ids = results.map((r) => r.job!.id);
    const finals = ids.map((id) => collect(admin.watchJob({ id })));
    await new Promise((r) => setTimeout(r, 1000));
    await replica({ WORKERS_ENABLED: "true", MONEY_CONCURRENCY: "100" });
    const all = await Promise.all(finals);
    let sawCompletion = 0;
    for (const events of all) {
      expect(events[0]!.type).toBe(JobEventType.SNAPSHOT);
      const last = events[events.length - 1]!;
      // The final event, or a snapshot that was already final.
      expect(last.job!.state).toBe(JobState.COMPLETED);
      if (last.type === JobEventType.COMPLETED) sawCompletion++;
    }
    expect(sawCompletion).toBeGreaterThan(900);
  }, 120_000);
});
