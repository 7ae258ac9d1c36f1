/**
 * Processing throughput: `jobs` payments, each of whose handlers writes one ledger row, completed end
 * to end after the paused queue is resumed. The service runs them with every guarantee on (events,
 * fencing, pause and limit checks, heartbeats); raw pg-boss runs the same ledger insert in its
 * best-tuned `work()` loop, with the same connection budget. The backlog is in place before either
 * starts.
 *
 * Under load (`Load`): the same queue also holds `delayed` jobs due in an hour, and an operator's
 * dashboard polls the queue's stats every `statsEveryMs` while the backlog drains (GetQueueStats for
 * the service, `getQueue()` for raw pg-boss).
 */
import { createHash } from "node:crypto";
import { openDashboards } from "./dashboards.js";
import { type BenchDatabase, type BenchService, createRawQueue, loops, paymentPayload, poller, rawBoss, type Summary, sleep, until } from "./harness.js";

/** What else the queue holds and who watches it while the backlog drains. */
export interface Load {
  /** Jobs in the same queue due in an hour. */
  delayed: number;
  /** The dashboard's stats poll (0: nobody polls). */
  statsEveryMs: number;
  /** Operations dashboards open on the Overview (bench/dashboards.ts). */
  dashboards?: number;
}

export const NO_LOAD: Load = { delayed: 0, statsEveryMs: 0 };

export interface Drain {
  /** Jobs completed per second. */
  rate: number;
  /** The stats calls' latencies while it drained (ms), when polled. */
  stats?: Summary;
}

const HOUR_MS = 3_600_000;

/** Adds `jobs` payments (from number `from` on) through AddJobs of 1,000, `delayMs` ahead if set. */
export async function addPayments(svc: BenchService, jobs: number, from = 0, delayMs = 0): Promise<void> {
  const client = svc.jobs();
  const batch = 1000;
  const options = delayMs > 0 ? { schedule: { case: "delay" as const, value: { seconds: BigInt(Math.round(delayMs / 1000)) } } } : undefined;
  await loops(2, Math.ceil(jobs / batch), (n) =>
    client.addJobs({
      jobs: Array.from({ length: Math.min(batch, jobs - n * batch) }, (_, i) => ({
        type: "payment:process",
        payload: paymentPayload(from + n * batch + i),
        options,
      })),
    }),
  );
}

/** Completed payments in the service's money queue. */
export const completedPayments = (db: BenchDatabase, svc: BenchService) => async () =>
  (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${svc.pgbossSchema}".job WHERE name = 'money/payment.process' AND state = 'completed'`))[0]!
    .n;

/** Loads `jobs` payments (and the delayed ones) into a paused money queue, resumes it, and times the completions. */
export async function serviceProcessing(db: BenchDatabase, svc: BenchService, jobs: number, load: Load = NO_LOAD): Promise<Drain> {
  const queues = svc.queues();
  await queues.pauseQueue({ name: "money" });
  if (load.delayed > 0) await addPayments(svc, load.delayed, 10_000_000, HOUR_MS);
  await addPayments(svc, jobs);
  // One client, so one connection, as a dashboard polls (a client per call opened a connection per call).
  const statsClient = svc.queues();
  const dashboard = load.statsEveryMs > 0 ? poller(load.statsEveryMs, () => statsClient.getQueueStats({ name: "money" })) : undefined;
  const tabs = load.dashboards ? openDashboards(svc, load.dashboards) : undefined;
  if (tabs) await sleep(1500); // their streams open and deliver before the drain starts
  const started = performance.now();
  await queues.resumeQueue({ name: "money" });
  const done = await until(completedPayments(db, svc), jobs);
  const stats = await dashboard?.stop();
  const seen = await tabs?.stop();
  if (tabs && seen!.snapshots === 0) throw new Error("the dashboards received no metrics");
  const ledger = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${svc.schema}".sandbox_ledger`))[0]!.n;
  if (ledger !== jobs) throw new Error(`the ledger has ${ledger} rows for ${jobs} jobs`);
  return { rate: jobs / ((done - started) / 1000), stats };
}

/** The raw pg-boss work loop's settings that were tried; the best one counts. */
export const RAW_WORK_SETTINGS = [
  { batchSize: 50, localConcurrency: 4 },
  { batchSize: 100, localConcurrency: 2 },
  { batchSize: 20, localConcurrency: 10 },
];

export type RawWorkSettings = (typeof RAW_WORK_SETTINGS)[number];

/** Raw pg-boss: the same ledger insert per job in a tuned work() loop; jobs per second. */
export async function rawProcessing(db: BenchDatabase, budget: number, jobs: number, settings: RawWorkSettings, load: Load = NO_LOAD): Promise<Drain> {
  const raw = await rawBoss(db, budget, { supervise: true, schedule: false });
  try {
    const ledger = `"${raw.schema}".ledger`;
    await db.query(`CREATE TABLE ${ledger} (root_job_id uuid PRIMARY KEY, kind text NOT NULL, reference text NOT NULL UNIQUE, payment_id text,
      amount bigint, currency text, details jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now())`);
    await createRawQueue(raw.boss);
    const startAfter = new Date(Date.now() + HOUR_MS);
    for (let n = 0; n < load.delayed; n += 1000) {
      await raw.boss.insert(
        "bench",
        Array.from({ length: Math.min(1000, load.delayed - n) }, (_, i) => ({ data: paymentPayload(10_000_000 + n + i), startAfter })),
      );
    }
    for (let n = 0; n < jobs; n += 1000) {
      await raw.boss.insert(
        "bench",
        Array.from({ length: Math.min(1000, jobs - n) }, (_, i) => ({ data: paymentPayload(n + i) })),
      );
    }
    const dbx = raw.boss.getDb();
    const completed = async () =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${raw.schema}".job WHERE name = 'bench' AND state = 'completed'`))[0]!.n;
    const dashboard = load.statsEveryMs > 0 ? poller(load.statsEveryMs, () => raw.boss.getQueue("bench")) : undefined;
    const started = performance.now();
    await raw.boss.work<ReturnType<typeof paymentPayload>>("bench", { ...settings, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true }, async (batch) => {
      await Promise.all(
        batch.map((job) => {
          const reference = `ch_${createHash("sha256").update(job.id).digest("hex").slice(0, 24)}`;
          return dbx.executeSql(
            `INSERT INTO ${ledger} (root_job_id, kind, reference, payment_id, amount, currency, details)
           VALUES ($1, 'charge', $2, $3, $4, $5, $6) ON CONFLICT (root_job_id) DO NOTHING
           RETURNING kind, reference, payment_id, amount, currency, details, created_at`,
            [job.id, reference, job.data.paymentId, job.data.amount, job.data.currency, { provider: "raw" }],
          );
        }),
      );
    });
    const done = await until(completed, jobs);
    const stats = await dashboard?.stop();
    return { rate: jobs / ((done - started) / 1000), stats };
  } finally {
    await raw.stop();
  }
}
