/**
 * `npm run bench`: the service side by side with raw pg-boss on the same PostgreSQL, in one run, with
 * the same connection budget. Prints a table and writes bench/results/<time>.json.
 *
 *   npm run bench              the full run (a few minutes on 2 cores)
 *   npm run bench -- --quick   smaller counts, to prove the benchmark still works (CI runs this)
 *
 * DATABASE_URL picks the database; unset, a throwaway embedded PostgreSQL.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { batchEnqueue, unaryEnqueue } from "./enqueue.js";
import { type BenchService, benchDatabase, benchService } from "./harness.js";
import { enqueueToStart, watchFinalEvent } from "./latency.js";
import { RAW_WORK_SETTINGS, rawProcessing, serviceProcessing } from "./processing.js";

const quick = process.argv.includes("--quick");
const counts = quick ? { batch: 5_000, unary: 2_000, processing: 5_000, latency: 50 } : { batch: 50_000, unary: 20_000, processing: 50_000, latency: 300 };
/** Connections: the service's pool plus pg-boss's (10 + 10); raw pg-boss gets as many. */
const POOLS = { DATABASE_POOL_MAX: "10", PGBOSS_POOL_MAX: "10" };
const budget = 20;

const db = await benchDatabase();
const version = (await db.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0]!.v;
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
const rss: number[] = [];

async function withService<T>(env: Record<string, string>, fn: (svc: BenchService) => Promise<T>): Promise<T> {
  const svc = await benchService(db, { ...POOLS, ...env });
  try {
    return await fn(svc);
  } finally {
    rss.push(svc.peakRssMb());
    await svc.stop();
  }
}

log(`${quick ? "quick" : "full"} run on PostgreSQL ${version}, ${cpus().length} cores`);
log(`batch enqueue: ${counts.batch} jobs`);
const batch = await withService({ WORKERS_ENABLED: "false" }, (svc) => batchEnqueue(db, svc, budget, counts.batch));
log(`unary enqueue: ${counts.unary} jobs from 64 clients`);
const unary = await withService({ WORKERS_ENABLED: "false" }, (svc) => unaryEnqueue(db, svc, budget, counts.unary));
log(`processing: ${counts.processing} payments`);
const service = await withService({ WORKERS_ENABLED: "true", MONEY_CONCURRENCY: "100" }, async (svc) => {
  const rate = await serviceProcessing(db, svc, counts.processing);
  log(`enqueue -> start latency: ${counts.latency} jobs`);
  return { rate, enqueueToStart: await enqueueToStart(db, svc, counts.latency) };
});
const rawTries: { settings: (typeof RAW_WORK_SETTINGS)[number]; rate: number }[] = [];
for (const settings of quick ? RAW_WORK_SETTINGS.slice(0, 1) : RAW_WORK_SETTINGS) {
  log(`raw pg-boss processing: batchSize ${settings.batchSize}, localConcurrency ${settings.localConcurrency}`);
  rawTries.push({ settings, rate: await rawProcessing(db, budget, counts.processing, settings) });
}
const bestRaw = rawTries.reduce((a, b) => (b.rate > a.rate ? b : a));
log(`WatchJob final event: ${counts.latency} jobs`);
const watch = await withService({ WORKERS_ENABLED: "false" }, (svc) => watchFinalEvent(db, svc, counts.latency));
await db.stop();

const rows = [
  { scenario: "batch enqueue (jobs/s, AddJobs x1000 vs insert())", service: batch.service, raw: batch.raw, goal: 0.9 },
  { scenario: "unary enqueue (jobs/s, 64 clients, AddJob vs send())", service: unary.service, raw: unary.raw, goal: 3 },
  { scenario: `processing (jobs/s, ${counts.processing} payments, ledger row each)`, service: service.rate, raw: bestRaw.rate, goal: 0.8 },
];
const fmt = (n: number) => n.toFixed(0).padStart(8);
console.log(
  `\nqueue-service vs raw pg-boss: PostgreSQL ${version}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ${quick ? "quick" : "full"} run\n`,
);
console.log(`${"scenario".padEnd(58)} ${"service".padStart(8)} ${"raw".padStart(8)}  ratio  goal`);
for (const r of rows) {
  const ratio = r.service / r.raw;
  console.log(`${r.scenario.padEnd(58)} ${fmt(r.service)} ${fmt(r.raw)}  ${ratio.toFixed(2).padStart(5)}  >=${r.goal} ${ratio >= r.goal ? "met" : "NOT met"}`);
}
console.log(
  `\nraw work() settings tried: ${rawTries.map((t) => `batchSize ${t.settings.batchSize} x localConcurrency ${t.settings.localConcurrency}: ${t.rate.toFixed(0)}/s`).join("; ")}`,
);
console.log(
  `enqueue -> start at light load (ms): p50 ${service.enqueueToStart.p50}, p90 ${service.enqueueToStart.p90}, p99 ${service.enqueueToStart.p99} (n=${service.enqueueToStart.n})`,
);
console.log(`WatchJob final event (ms):          p50 ${watch.p50}, p90 ${watch.p90}, p99 ${watch.p99} (n=${watch.n})`);
console.log(`service peak RSS (MiB):              ${Math.max(...rss)}`);

const result = {
  at: new Date().toISOString(),
  quick,
  postgres: version,
  cores: cpus().length,
  counts,
  connectionBudget: budget,
  throughput: rows.map((r) => ({ ...r, ratio: r.service / r.raw, met: r.service / r.raw >= r.goal })),
  rawWorkSettings: rawTries,
  enqueueToStartMs: service.enqueueToStart,
  watchFinalEventMs: watch,
  peakRssMb: Math.max(...rss),
};
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const file = new URL(`./results/${result.at.replace(/[:.]/g, "-")}.json`, import.meta.url);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
console.log(`\nwritten: bench/results/${file.pathname.split("/").pop()}`);
