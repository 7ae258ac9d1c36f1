/**
 * Processing throughput: `jobs` payments, each of whose handlers writes one ledger row, completed end
 * to end. The service runs them with every guarantee on (events, fencing, pause and limit checks,
 * heartbeats); raw pg-boss runs the same ledger insert in its best-tuned `work()` loop, with the
 * same connection budget. The backlog is in place before either starts.
 */
import { createHash } from "node:crypto";
import { type BenchDatabase, type BenchService, createRawQueue, loops, paymentPayload, rawBoss, until } from "./harness.js";

/** Loads `jobs` payments into a paused money queue, resumes it, and times the completions. */
export async function serviceProcessing(db: BenchDatabase, svc: BenchService, jobs: number): Promise<number> {
  const client = svc.jobs();
  const queues = svc.queues();
  await queues.pauseQueue({ name: "money" });
  const batch = 1000;
  await loops(2, Math.ceil(jobs / batch), (n) =>
    client.addJobs({
      jobs: Array.from({ length: Math.min(batch, jobs - n * batch) }, (_, i) => ({ type: "payment:process", payload: paymentPayload(n * batch + i) })),
    }),
  );
  const completed = async () =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${svc.pgbossSchema}".job WHERE name = 'money/payment.process' AND state = 'completed'`))[0]!
      .n;
  const started = performance.now();
  await queues.resumeQueue({ name: "money" });
  const done = await until(completed, jobs);
  const ledger = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${svc.schema}".sandbox_ledger`))[0]!.n;
  if (ledger !== jobs) throw new Error(`the ledger has ${ledger} rows for ${jobs} jobs`);
  return jobs / ((done - started) / 1000);
}

/** The raw pg-boss work loop's settings that were tried; the best one counts. */
export const RAW_WORK_SETTINGS = [
  { batchSize: 50, localConcurrency: 4 },
  { batchSize: 100, localConcurrency: 2 },
  { batchSize: 20, localConcurrency: 10 },
];

/** Raw pg-boss: the same ledger insert per job in a tuned work() loop; jobs per second. */
export async function rawProcessing(
  db: BenchDatabase,
  budget: number,
  jobs: number,
  settings: { batchSize: number; localConcurrency: number },
): Promise<number> {
  const raw = await rawBoss(db, budget, { supervise: true, schedule: false });
  try {
    const ledger = `"${raw.schema}".ledger`;
    await db.query(`CREATE TABLE ${ledger} (root_job_id uuid PRIMARY KEY, kind text NOT NULL, reference text NOT NULL UNIQUE, payment_id text,
      amount bigint, currency text, details jsonb NOT NULL DEFAULT '{}', created_at timestamptz NOT NULL DEFAULT now())`);
    await createRawQueue(raw.boss);
    for (let n = 0; n < jobs; n += 1000) {
      await raw.boss.insert(
        "bench",
        Array.from({ length: Math.min(1000, jobs - n) }, (_, i) => ({ data: paymentPayload(n + i) })),
      );
    }
    const dbx = raw.boss.getDb();
    const completed = async () =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${raw.schema}".job WHERE name = 'bench' AND state = 'completed'`))[0]!.n;
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
    return jobs / ((done - started) / 1000);
  } finally {
    await raw.stop();
  }
}
