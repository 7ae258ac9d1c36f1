/**
 * Per-key concurrency (JobOptions.concurrency_key, QueuePolicy.key_concurrency) on three replicas
 * with an external worker process on each: with a limit of one, no two jobs of a key overlap (read
 * from the jobs' own start and end times), across the queue's job types, and 50 keys x 40 jobs drain
 * within 1.5x of the same work with no limit; a backlog of 10,000 jobs of one key does not hold back
 * another key's 10.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AddJobRequest, JobService } from "../gen/jobs/v1/job_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure, violations } from "./support/errors.js";
import { runAlone } from "./support/run-alone.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

runAlone();

const root = fileURLToPath(new URL("..", import.meta.url));
const db = testDatabase();
const replicas: TestService[] = [];
const children: ChildProcess[] = [];
const api = (svc: TestService) => ({
  jobs: client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin }),
  queues: client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.admin }),
});
const TYPES = ["tenant:sync", "tenant:export", "tenant:free"];

beforeAll(async () => {
  for (let i = 0; i < 3; i++) replicas.push(await startTestService(db));
  const { queues } = api(replicas[0]!);
  await queues.createQueue({ queue: { name: "tenants", policy: { retryLimit: 0, keyConcurrency: 1 } } });
  await queues.createQueue({ queue: { name: "tenants-free", policy: { retryLimit: 0 } } });
  for (const name of TYPES)
    await queues.registerJobType({
      jobType: { name, queue: name === "tenant:free" ? "tenants-free" : "tenants", payloadSchema: { type: "object" }, workers: ["wrk-a"] },
    });
  // One SDK worker process per replica, ten jobs at a time, 50 ms a job.
  for (const svc of replicas) {
    const child = spawn(process.execPath, ["--import", "tsx", "test/support/sdk-worker.ts"], {
      cwd: root,
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "/tmp",
        QS_URL: svc.baseUrl,
        QS_TOKEN: tokens.workerA,
        QS_TYPES: TYPES.join(","),
        QS_MODE: "slow",
        QS_SLOW_MS: "50",
        QS_CONCURRENCY: "10",
      },
      stdio: ["ignore", "ignore", "inherit"],
    });
    children.push(child);
  }
  await eventually(
    async () => replicas.every((r) => r.service.engine!.parts.external.waiting() >= 1),
    "a worker waiting in FetchJobs on every replica",
    30_000,
  );
}, 120_000);
afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  for (const r of replicas) await r.stop();
  await db.drop();
});

/** Adds jobs in batches of 1,000 (spread over the replicas). */
async function add(jobs: AddJobRequest[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < jobs.length; i += 1000) {
    const { results } = await api(replicas[(i / 1000) % 3]!).jobs.addJobs({ jobs: jobs.slice(i, i + 1000) });
    ids.push(...results.map((r) => r.job!.id));
  }
  return ids;
}

/** Waits until every job of `ids` completed; returns the milliseconds since `since`. */
async function drained(ids: string[], since: number): Promise<number> {
  await eventually(
    async () => {
      const { rows } = await db.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[]) AND state = 'completed'`,
        [ids],
      );
      return rows[0]!.n === ids.length;
    },
    "every job to complete",
    120_000,
    50,
  );
  return Date.now() - since;
}

const job = (type: string, key: string, i: number): AddJobRequest =>
  ({ type, payload: { i }, options: { concurrencyKey: key, dependsOn: [], dependsOnBatchIndexes: [] } }) as unknown as AddJobRequest;

describe("per-key concurrency", () => {
  it("refuses a key limit out of bounds, naming the field", async () => {
    const err = await failure(api(replicas[0]!).queues.createQueue({ queue: { name: "bad-keys", policy: { keyConcurrency: 1001 } } }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violations(err).map((v) => [v.field, v.reason])).toEqual([["queue.policy.key_concurrency", "OUT_OF_RANGE"]]);
    const { queues } = await api(replicas[1]!).queues.listQueues({});
    expect(queues.find((q) => q.name === "tenants")!.policy!.keyConcurrency).toBe(1);
  });

  it("runs one job of a key at a time across three replicas and two job types, within 1.5x of no limit", async () => {
    const KEYS = 50;
    const PER_KEY = 40;
    // Each customer's jobs added together, as a customer's burst would be.
    const key = (i: number) => `customer-${Math.floor(i / PER_KEY)}`;
    const free = Array.from({ length: KEYS * PER_KEY }, (_, i) => job("tenant:free", key(i), i));
    const t0 = Date.now();
    const freeIds = await add(free);
    const unlimitedMs = await drained(freeIds, t0);

    const keyed = Array.from({ length: KEYS * PER_KEY }, (_, i) => job(i % 2 ? "tenant:sync" : "tenant:export", key(i), i));
    const t1 = Date.now();
    const keyedIds = await add(keyed);
    const keyedMs = await drained(keyedIds, t1);

    // No job of a key started before every earlier-started job of the key had ended.
    const { rows: overlaps } = await db.query<{ key: string }>(
      `SELECT key FROM (
         SELECT group_id AS key, started_on,
           max(completed_on) OVER (PARTITION BY group_id ORDER BY started_on ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS ended_before
         FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[])
       ) h WHERE started_on < ended_before`,
      [keyedIds],
    );
    expect(overlaps).toEqual([]);
    // ...while jobs of the unlimited queue with the same keys did overlap (the check can fail).
    const { rows: freeOverlaps } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM (
         SELECT started_on, max(completed_on) OVER (PARTITION BY group_id ORDER BY started_on ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS ended_before
         FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[])
       ) h WHERE started_on < ended_before`,
      [freeIds],
    );
    expect(freeOverlaps[0]!.n).toBeGreaterThan(0);
    console.log(`key_concurrency 1, ${KEYS} keys x ${PER_KEY} jobs: ${keyedMs} ms; no limit: ${unlimitedMs} ms (${(keyedMs / unlimitedMs).toFixed(2)}x)`);
    expect(keyedMs).toBeLessThanOrEqual(unlimitedMs * 1.5);
  }, 300_000);

  it("does not hold back another key's jobs behind a backlog of 10,000 of one key", async () => {
    await add(Array.from({ length: 10_000 }, (_, i) => job("tenant:sync", "big-customer", i)));
    const t0 = Date.now();
    const small = await add(Array.from({ length: 10 }, (_, i) => job("tenant:sync", "small-customer", i)));
    const ms = await drained(small, t0);
    // Ten jobs of 50 ms one after another, claims included: seconds, not the backlog's ~9 minutes.
    expect(ms).toBeLessThan(15_000);
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM "${db.bossSchema}".job WHERE group_id = 'big-customer' AND state = 'active'`,
    );
    expect(rows[0]!.n).toBeLessThanOrEqual(1);
  }, 120_000);
});
