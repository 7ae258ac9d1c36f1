/**
 * Real processes under load: two replicas work through 2,000 sandbox payments and one of them is
 * killed with SIGKILL a quarter of the way. Every job completes, each charged exactly once; no job ever had two
 * attempts running at once; and the jobs the killed replica was running are rescued by the other
 * once their lease lapses, within a bound derived from the lease, the supervisor's interval and the
 * retry delay.
 */
import { afterAll, describe, expect, it } from "vitest";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { HEARTBEAT_INTERVAL_MS } from "../src/engine/dispatch/executor.js";
import { bossQueueName } from "../src/engine/registry.js";
import { LEASE_SECONDS, SUPERVISE_INTERVAL_SECONDS } from "../src/engine/store/boss.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { jobHistories, unsoundHistories } from "./support/job-history.js";
import { payment } from "./support/payloads.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { runAlone } from "./support/run-alone.js";
import { tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

runAlone();

const JOBS = 2000;
const BATCH = 1000;
const CONCURRENCY = 20;
const LATENCY_MS = 300;
const POLL_MS = 250;
/** Per-job retry delay (no backoff), so the rescue time is the lease's, not the money queue's backoff. */
const RETRY_DELAY_SECONDS = 1;
/** Slack for a loaded 2-core machine: scheduling, the completion batch, the fetch after the retry is due. */
const MARGIN_MS = 8000;
/**
 * Kill -> last rescued job completed: the dead worker's last heartbeat is at most the kill, so its
 * jobs are expirable LEASE_SECONDS later, the supervisor notices within its interval, the retry is
 * due RETRY_DELAY_SECONDS after that, a worker fetches it within its poll interval and runs it.
 */
const RESCUE_BOUND_MS = (LEASE_SECONDS + SUPERVISE_INTERVAL_SECONDS + RETRY_DELAY_SECONDS) * 1000 + POLL_MS + LATENCY_MS + MARGIN_MS;
/** An attempt whose heartbeat was refreshed up to the kill cannot expire sooner than this after it. */
const EARLIEST_EXPIRY_MS = LEASE_SECONDS * 1000 - HEARTBEAT_INTERVAL_MS - 2000;

const db = testDatabase();
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await db.drop();
});

const replica = () =>
  startReplica(db, processes, {
    WORKERS_ENABLED: "true",
    MONEY_CONCURRENCY: String(CONCURRENCY),
    SANDBOX_LATENCY_MS: String(LATENCY_MS),
    WORKER_POLL_INTERVAL_MS: String(POLL_MS),
    // The defaults, rather than the small pools of the in-process tests: this is a load test.
    DATABASE_POOL_MAX: "10",
    PGBOSS_POOL_MAX: "10",
  });

const paymentQueue = bossQueueName("money", "payment:process");
const countIn = async (ids: string[], state: string) =>
  (
    await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.bossSchema}".job WHERE name = $1 AND id = ANY($2::uuid[]) AND state = $3`, [
      paymentQueue,
      ids,
      state,
    ])
  ).rows[0]!.n;

describe("a replica killed under load", () => {
  it("loses nothing: every payment completes once, the killed replica's jobs are rescued within the lease bound", async () => {
    // One after the other: replicas starting together on a fresh schema race in ensure_event_triggers().
    const a = await replica();
    const b = await replica();
    const api = client(JobService, b.baseUrl, { protocol: "grpc", token: tokens.admin });
    const started = Date.now();
    const ids: string[] = [];
    const roots: string[] = [];
    for (let i = 0; i < JOBS; i += BATCH) {
      const { results } = await api.addJobs({
        jobs: Array.from({ length: BATCH }, () => ({
          type: "payment:process",
          payload: payment(),
          options: { retryDelay: { seconds: BigInt(RETRY_DELAY_SECONDS) }, retryBackoff: false },
        })),
      });
      for (const r of results) {
        ids.push(r.job!.id);
        roots.push(r.job!.rootJobId);
      }
    }
    expect(ids).toHaveLength(JOBS);

    // A quarter of the way through, while both replicas have every slot busy, kill one.
    await eventually(async () => (await countIn(ids, "completed")) >= JOBS / 4, "a quarter of the payments to complete", 60_000, 50);
    const killedAt = Date.now();
    await a.stop("SIGKILL");
    const completedAtKill = await countIn(ids, "completed");

    await eventually(async () => (await countIn(ids, "completed")) === JOBS, `all ${JOBS} payments to complete`, 90_000, 200);
    const totalMs = Date.now() - started;

    // Charged exactly once each (the ledger is keyed by root_job_id, so none missing means one each).
    const { rows: ledger } = await db.query<{ root: string; n: number }>(
      `SELECT root_job_id::text AS root, count(*)::int AS n FROM "${db.schema}".sandbox_ledger WHERE root_job_id = ANY($1::uuid[]) GROUP BY 1`,
      [roots],
    );
    expect(ledger).toHaveLength(JOBS);
    expect(ledger.filter((r) => r.n !== 1)).toEqual([]);

    // Never two attempts of a job at once; exactly one completion each.
    const histories = await jobHistories(db.query, db.schema, ids);
    expect(unsoundHistories(histories)).toEqual({});

    // The rescued jobs: those whose attempt the supervisor failed for a lost heartbeat.
    const rescued = [...histories].flatMap(([id, events]) => {
      const expired = events.find((e) => e.type === "expired");
      if (!expired) return [];
      const completed = events.find((e) => e.type === "completed")!;
      return [{ id, expired, completed }];
    });
    // The killed replica had every slot busy: it must have left jobs behind.
    expect(rescued.length).toBeGreaterThan(0);
    expect(rescued.length).toBeLessThanOrEqual(CONCURRENCY * 2);
    for (const r of rescued) {
      expect(r.expired.detail?.value?.message, r.id).toBe("job heartbeat timeout");
      // Only the killed replica's attempts lapsed: the survivor kept every lease it held.
      expect(r.expired.attempt_started_at!.getTime(), `job ${r.id} lost a lease taken after the kill`).toBeLessThan(killedAt);
      // Not rescued before its lease could have run out.
      expect(r.expired.occurred_at.getTime() - killedAt, `job ${r.id} expired too early`).toBeGreaterThanOrEqual(EARLIEST_EXPIRY_MS);
    }
    // Every retried job is a rescued one: nothing else failed under the load.
    const { rows: retried } = await db.query<{ id: string }>(
      `SELECT id::text FROM "${db.bossSchema}".job WHERE name = $1 AND id = ANY($2::uuid[]) AND retry_count > 0`,
      [paymentQueue, ids],
    );
    expect(retried.map((r) => r.id).sort()).toEqual(rescued.map((r) => r.id).sort());

    const rescueMs = Math.max(...rescued.map((r) => r.completed.occurred_at.getTime())) - killedAt;
    const firstExpiryMs = Math.min(...rescued.map((r) => r.expired.occurred_at.getTime())) - killedAt;
    console.info(
      `replica kill: ${JOBS} payments in ${totalMs} ms; killed at ${completedAtKill} completed; ${rescued.length} rescued; ` +
        `first expiry ${firstExpiryMs} ms and last rescued completion ${rescueMs} ms after the kill (bound ${RESCUE_BOUND_MS} ms)`,
    );
    expect(rescueMs).toBeLessThan(RESCUE_BOUND_MS);

    expect((await b.stop("SIGTERM")).code, b.output()).toBe(0);
  }, 150_000);
});
