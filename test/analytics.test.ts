/**
 * Analytics rollups and GetMetrics: for a known set of events the per-minute and per-hour rollups
 * hold exactly the expected counts and durations, re-running rewrites without double counting, late
 * events are picked up; after a real workload GetMetrics reports exactly the counts the jobs' own
 * timestamps imply, and percentiles within the activity histogram's bound of the exact ones.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Job, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { type LatencySummary, MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { binOfMs, HISTOGRAM_RELATIVE_ERROR } from "../src/engine/activity.js";
import { createAnalytics } from "../src/engine/analytics.js";
import { rollupQueries } from "../src/engine/queries/rollup-queries.js";
import { serviceRegistry } from "../src/workers/registry.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure } from "./support/errors.js";
import { bossQueueOf } from "./support/job-states.js";
import { payment } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually, waitForJob } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
let pool: pg.Pool;
let analytics: ReturnType<typeof createAnalytics>;

beforeAll(async () => {
  svc = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200", SANDBOX_LATENCY_MS: "30" });
  pool = new pg.Pool({ connectionString: db.url, max: 3 });
  analytics = createAnalytics({ pool, registry: serviceRegistry(), queries: rollupQueries(db.schema), eventRetentionSeconds: 3 * 24 * 60 * 60 });
});
afterAll(async () => {
  await pool?.end();
  await svc?.stop();
  await db.drop();
});

const ms = (d: { seconds: bigint; nanos: number } | undefined) => (d ? Number(d.seconds) * 1000 + d.nanos / 1e6 : 0);
const latency = (l: LatencySummary | undefined) => ({
  count: Number(l?.count ?? 0n),
  p50: ms(l?.p50),
  p90: ms(l?.p90),
  p95: ms(l?.p95),
  p99: ms(l?.p99),
  max: ms(l?.max),
});
/** The exact nearest-rank percentile of sorted values. */
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
const expectedLatency = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50)!,
    p90: percentile(sorted, 90)!,
    p95: percentile(sorted, 95)!,
    p99: percentile(sorted, 99)!,
    max: sorted[sorted.length - 1]!,
  };
};
const closeTo = (actual: ReturnType<typeof latency>, expected: ReturnType<typeof expectedLatency>) => {
  expect(actual.count).toBe(expected.count);
  // Read from a histogram: within its relative bound of the exact value (plus the microsecond rounding).
  for (const k of ["p50", "p90", "p95", "p99", "max"] as const)
    expect(Math.abs(actual[k] - expected[k]), k).toBeLessThanOrEqual(expected[k] * HISTOGRAM_RELATIVE_ERROR + 0.001);
};

describe("rollups of a known set of events", () => {
  const queue = () => bossQueueOf("refund:process");
  // Minutes M and M + 1 fall in the same hour (the hour rollup below reads one hour).
  const thirtyMinutesAgo = Math.floor((Date.now() - 30 * 60_000) / 60_000) * 60_000;
  const M = new Date(new Date(thirtyMinutesAgo).getUTCMinutes() === 59 ? thirtyMinutesAgo - 60_000 : thirtyMinutesAgo);
  const at = (offsetMs: number) => new Date(M.getTime() + offsetMs);
  const event = (type: string, offsetMs: number, extra: { readyMs?: number; runMs?: number } = {}) =>
    db.query(
      `INSERT INTO "${db.schema}".job_event (job_id, queue_name, type, state, retry_count, occurred_at, ready_at, attempt_started_at)
       VALUES (gen_random_uuid(), $1, $2, 'x', 0, $3, $4, $5)`,
      [
        queue(),
        type,
        at(offsetMs),
        extra.readyMs === undefined ? null : at(offsetMs - extra.readyMs),
        extra.runMs === undefined ? null : at(offsetMs - extra.runMs),
      ],
    );

  it("are exact, idempotent, and pick up late events", async () => {
    for (let i = 0; i < 4; i++) await event("created", 1000 + i);
    await event("started", 2000, { readyMs: 100 });
    await event("started", 2100, { readyMs: 200 });
    await event("started", 2200, { readyMs: 400 });
    await event("completed", 5000, { runMs: 1000 });
    await event("completed", 6000, { runMs: 3000 });
    await event("failed", 7000, { runMs: 500 });
    await event("dead_lettered", 7000);
    await event("retry_scheduled", 8000, { runMs: 250 });
    await event("cancelled", 9000);
    await event("started", 60_000 + 500, { readyMs: 50 });
    await event("completed", 60_000 + 900, { runMs: 10 });

    const range = { from: M, to: new Date(M.getTime() + 2 * 60_000) };
    const rows = async () =>
      (
        await db.query(
          `SELECT minute, added, started, completed, failed, dead_lettered, cancelled, retried, wait_ms, run_ms FROM "${db.schema}".job_stats_minute WHERE queue_name = $1 ORDER BY minute`,
          [queue()],
        )
      ).rows;
    const expected = [
      {
        minute: M,
        added: 4,
        started: 3,
        completed: 2,
        failed: 1,
        dead_lettered: 1,
        cancelled: 1,
        retried: 1,
        wait_ms: [100, 200, 400],
        run_ms: [250, 500, 1000, 3000],
      },
      {
        minute: new Date(M.getTime() + 60_000),
        added: 0,
        started: 1,
        completed: 1,
        failed: 0,
        dead_lettered: 0,
        cancelled: 0,
        retried: 0,
        wait_ms: [50],
        run_ms: [10],
      },
    ];
    await analytics.rollup(range);
    expect(await rows()).toEqual(expected);
    await analytics.rollup(range);
    expect(await rows()).toEqual(expected);

    // An event of minute M that committed after the rollup ran.
    await event("completed", 30_000, { runMs: 2000 });
    await analytics.rollup(range);
    expect((await rows())[0]).toMatchObject({ completed: 3, run_ms: [250, 500, 1000, 2000, 3000] });

    await analytics.rollup({ ...range, bucket: "hour" });
    const {
      rows: [hour],
    } = await db.query(`SELECT * FROM "${db.schema}".job_stats_hour WHERE queue_name = $1`, [queue()]);
    expect(hour).toMatchObject({
      added: 4,
      started: 4,
      completed: 4,
      failed: 1,
      dead_lettered: 1,
      cancelled: 1,
      retried: 1,
      wait_count: 4,
      wait_p50_ms: 100,
      wait_p90_ms: 400,
      wait_max_ms: 400,
      run_count: 6,
      run_p50_ms: 500,
      run_p99_ms: 3000,
      run_max_ms: 3000,
    });

    // GetMetrics over a window that covers the fixture reads the same numbers.
    const monitoring = client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const { snapshot } = await monitoring.getMetrics({ queue: "money", window: { seconds: 3600n } });
    const refund = snapshot!.queues[0]!.jobTypes.find((t) => t.type === "refund:process")!;
    expect({
      added: Number(refund.added),
      started: Number(refund.started),
      completed: Number(refund.completed),
      failed: Number(refund.failed),
      deadLettered: Number(refund.deadLettered),
      retried: Number(refund.retried),
    }).toEqual({ added: 4, started: 4, completed: 4, failed: 1, deadLettered: 1, retried: 1 });
    closeTo(latency(refund.enqueueToStart), expectedLatency([100, 200, 400, 50]));
    closeTo(latency(refund.runTime), expectedLatency([250, 500, 1000, 2000, 3000, 10]));
  });
});

describe("activity counters", () => {
  it("bin durations in SQL as the reader reads them back", async () => {
    // Whole microseconds: the resolution of PostgreSQL's timestamps, so of every duration an event holds.
    const values = [0, 0.003, 0.37, 1, 12.346, 999.9, 61_000.5, 3_600_007];
    const { rows } = await db.query<{ bin: number }>(`SELECT "${db.schema}".duration_bin(v * interval '1 millisecond') AS bin FROM unnest($1::float8[]) AS v`, [
      values,
    ]);
    expect(rows.map((r) => r.bin)).toEqual(values.map(binOfMs));
  });

  it("fold minutes older than two hours into hours, and round the window out to them", async () => {
    const queue = bossQueueOf("nft:mint");
    const threeHoursAgo = new Date(Date.now() - 3 * 3_600_000);
    await db.query(
      `INSERT INTO "${db.schema}".job_event (job_id, queue_name, type, state, retry_count, occurred_at, attempt_started_at)
       VALUES (gen_random_uuid(), $1, 'completed', 'completed', 0, $2, $2::timestamptz - interval '750 milliseconds')`,
      [queue, threeHoursAgo],
    );
    await eventually(
      async () => (await db.query(`SELECT 1 FROM "${db.schema}".job_activity WHERE queue_name = $1 AND hourly AND kind = 'completed'`, [queue])).rowCount === 1,
      "the event's minute folded into its hour",
    );
    const monitoring = client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const mint = async (seconds: bigint) =>
      (await monitoring.getMetrics({ queue: "money", window: { seconds } })).snapshot!.queues[0]!.jobTypes.find((t) => t.type === "nft:mint")!;
    const week = await mint(7n * 86_400n);
    expect(Number(week.completed)).toBe(1);
    expect(Math.abs(ms(week.runTime!.p50) - 750)).toBeLessThanOrEqual(750 * HISTOGRAM_RELATIVE_ERROR + 0.001);
    expect(Number((await mint(3600n)).completed)).toBe(0);
  });
});

describe("GetMetrics after a real workload", () => {
  it("reports what the jobs' own timestamps imply", async () => {
    const jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const added: string[] = [];
    for (let i = 0; i < 10; i++) added.push((await jobs.addJob({ type: "payment:process", payload: payment() })).job!.id);
    for (let i = 0; i < 3; i++) added.push((await jobs.addJob({ type: "payment:process", payload: payment({ paymentMethod: "tok_decline" }) })).job!.id);
    const done: Job[] = [];
    for (const id of added)
      done.push(await waitForJob(jobs, id, (j) => j.state === JobState.COMPLETED || (j.state === JobState.FAILED && j.deadLetterJobId !== ""), "to finish"));
    const { rows } = await db.query<{ wait: number; run: number; state: string }>(
      `SELECT extract(epoch FROM started_on - start_after) * 1000 AS wait, extract(epoch FROM completed_on - started_on) * 1000 AS run, state::text
       FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[])`,
      [added],
    );
    const monitoring = client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const { snapshot } = await monitoring.getMetrics({ queue: "money", window: { seconds: 300n } });
    const money = snapshot!.queues.find((q) => q.queue === "money")!;
    const pay = money.jobTypes.find((t) => t.type === "payment:process")!;
    expect({
      added: Number(pay.added),
      started: Number(pay.started),
      completed: Number(pay.completed),
      failed: Number(pay.failed),
      deadLettered: Number(pay.deadLettered),
    }).toEqual({ added: 13, started: 13, completed: 10, failed: 3, deadLettered: 3 });
    closeTo(latency(pay.enqueueToStart), expectedLatency(rows.map((r) => Number(r.wait))));
    closeTo(latency(pay.runTime), expectedLatency(rows.map((r) => Number(r.run))));
    expect(pay.completedPerSecond).toBeCloseTo(10 / 300, 6);
    expect(Number(money.depth)).toBe(0);
    expect(Number(money.active)).toBe(0);
    expect((await failure(monitoring.getMetrics({ window: { seconds: 10n } }))).code).toBe(Code.InvalidArgument);
    expect((await failure(monitoring.getMetrics({ queue: "nope" }))).code).toBe(Code.InvalidArgument);
  });
});
