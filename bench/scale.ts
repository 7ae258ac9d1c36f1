/**
 * At scale (the full run only): does processing slow down, and do reads grow, as the job table fills?
 *
 * 1. Processing with a small backlog: `reference` payments, drained after ResumeQueue.
 * 2. Processing with a large one: `backlog` more are added to the paused queue, and the time to
 *    complete the next `reference` of them is measured the same way.
 * 3. Reads with `total` jobs in the table: the queue is paused again and filled up to `total`, then
 *    every read a dashboard or a client makes is timed (median of `samples` calls each).
 */
import { JobState } from "../gen/jobs/v1/job_pb.js";
import { firstPaint } from "./first-paint.js";
import type { BenchDatabase, BenchService, Summary } from "./harness.js";
import { summary, until } from "./harness.js";
import { addPayments, completedPayments } from "./processing.js";

export interface ScaleFigures {
  /** Jobs per second with `reference` ready, and with `backlog` more ready. */
  small: number;
  large: number;
  /** Each read's latency (ms) with `total` jobs in the table. */
  reads: { read: string; latency: Summary }[];
  /** The dashboard's first useful paint (ms) with `total` jobs, where Chromium is installed. */
  paints?: { page: string; latency: Summary }[];
}

export async function atScale(
  db: BenchDatabase,
  svc: BenchService,
  sizes: { reference: number; backlog: number; total: number; samples: number },
  log: (msg: string) => void,
): Promise<ScaleFigures> {
  const queues = svc.queues();
  const completed = completedPayments(db, svc);
  const drain = async (target: number, ready: number) => {
    const before = await completed();
    const started = performance.now();
    await queues.resumeQueue({ name: "money" });
    const done = await until(completed, before + target);
    await queues.pauseQueue({ name: "money" });
    log(`  ${target} completed with ${ready} ready in ${((done - started) / 1000).toFixed(1)} s`);
    return target / ((done - started) / 1000);
  };

  await queues.pauseQueue({ name: "money" });
  let added = 0;
  const add = async (n: number) => {
    const t0 = performance.now();
    await addPayments(svc, n, added);
    added += n;
    log(`  ${n} payments added (${added} in all) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  };
  await add(sizes.reference);
  const small = await drain(sizes.reference, sizes.reference);
  await add(sizes.backlog);
  const large = await drain(sizes.reference, sizes.backlog);
  await add(sizes.total - added);
  await db.query("VACUUM ANALYZE");

  const jobs = svc.jobs();
  const monitoring = svc.monitoring();
  const reads: [string, () => Promise<unknown>][] = [
    ["GetQueueStats", () => queues.getQueueStats({ name: "money" })],
    ["ListQueues", () => queues.listQueues({})],
    ["GetMetrics (5 min)", () => monitoring.getMetrics({})],
    ["GetMetrics (7 days, money)", () => monitoring.getMetrics({ queue: "money", window: { seconds: 7n * 86_400n } })],
    ["ListJobs by queue", () => jobs.listJobs({ queue: "money", pageSize: 50 })],
    ["ListJobs by type and state", () => jobs.listJobs({ type: "payment:process", states: [JobState.COMPLETED], pageSize: 50 })],
    ["ListJobs by state (waiting)", () => jobs.listJobs({ states: [JobState.CREATED], pageSize: 50 })],
    ["ListJobs by state (completed, the oldest)", () => jobs.listJobs({ states: [JobState.COMPLETED], pageSize: 50 })],
    [
      "ListJobs created in the last hour",
      () => jobs.listJobs({ queue: "money", createdAfter: { seconds: BigInt(Math.floor(Date.now() / 1000) - 3600) }, pageSize: 50 }),
    ],
  ];
  const figures: ScaleFigures["reads"] = [];
  for (const [read, call] of reads) {
    await call(); // warm-up
    const latencies: number[] = [];
    for (let i = 0; i < sizes.samples; i++) {
      const t0 = performance.now();
      await call();
      latencies.push(performance.now() - t0);
    }
    figures.push({ read, latency: summary(latencies) });
  }
  return { small, large, reads: figures, paints: await firstPaint(svc, 5) };
}
