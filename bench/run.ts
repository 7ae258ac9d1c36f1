/**
 * `npm run bench`: the service side by side with raw pg-boss on the same PostgreSQL, in one run, with
 * the same connection budget. Prints each figure beside its goal and writes bench/results/<time>.json.
 *
 *   npm run bench              the full run (about ten minutes on 2 cores; fills a million jobs)
 *   npm run bench -- --quick   smaller counts and no scale phase, to prove the benchmark works (CI)
 *
 * DATABASE_URL picks the database; unset, a throwaway embedded PostgreSQL. The service runs with the
 * node flags of `npm start`; SERVICE_NODE_FLAGS adds flags after them (a later flag wins).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { batchEnqueue, unaryEnqueue } from "./enqueue.js";
import { addToHandlerStart, idleLongPolls, rawNoopDrain, registerBenchType, sdkDrain } from "./external.js";
import { type BenchService, benchDatabase, benchService } from "./harness.js";
import { enqueueToStart, releaseToStart, watchFinalEvent } from "./latency.js";
import { type Load, RAW_WORK_SETTINGS, type RawWorkSettings, rawProcessing, serviceProcessing } from "./processing.js";
import { atScale, type ScaleFigures } from "./scale.js";

const quick = process.argv.includes("--quick");
const counts = quick
  ? { batch: 5_000, unary: 2_000, processing: 5_000, delayed: 10_000, latency: 50, watchRounds: 1, external: 5_000, idleSeconds: 5 }
  : { batch: 50_000, unary: 20_000, processing: 50_000, delayed: 100_000, latency: 300, watchRounds: 6, external: 50_000, idleSeconds: 10 };
/** Long-polling workers waiting at once on one replica. */
const IDLE_WAITERS = 1000;
const SCALE = { reference: 20_000, backlog: 500_000, total: 1_000_000, samples: 20 };
/** The drain an operator sees: a delayed backlog in the same queue, a dashboard polling its stats every 10 ms. */
const UNDER_LOAD: Load = { delayed: counts.delayed, statsEveryMs: 10 };
/** Connections: the service's pool plus pg-boss's (10 + 10); raw pg-boss gets as many. */
const POOLS = { DATABASE_POOL_MAX: "10", PGBOSS_POOL_MAX: "10" };
const budget = 20;
const WORKERS = { WORKERS_ENABLED: "true", MONEY_CONCURRENCY: "100" };

const db = await benchDatabase();
const version = (await db.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0]!.v;
const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);
/** Each service's peak resident set (MiB), by the phase it ran. */
const rss: Record<string, number> = {};

async function withService<T>(phase: string, env: Record<string, string>, fn: (svc: BenchService) => Promise<T>): Promise<T> {
  const svc = await benchService(db, { ...POOLS, ...env });
  try {
    return await fn(svc);
  } finally {
    rss[phase] = svc.peakRssMb();
    await svc.stop();
  }
}

log(`${quick ? "quick" : "full"} run on PostgreSQL ${version}, ${cpus().length} cores`);
log(`batch enqueue: ${counts.batch} jobs`);
const batch = await withService("batch enqueue", { WORKERS_ENABLED: "false" }, (svc) => batchEnqueue(db, svc, budget, counts.batch));
log(`unary enqueue: ${counts.unary} jobs from 64 clients`);
const unary = await withService("unary enqueue", { WORKERS_ENABLED: "false" }, (svc) => unaryEnqueue(db, svc, budget, counts.unary));
log(`processing: ${counts.processing} payments`);
const fresh = await withService("processing", WORKERS, async (svc) => {
  const drain = await serviceProcessing(db, svc, counts.processing);
  log(`enqueue -> start latency: ${counts.latency} jobs`);
  const toStart = await enqueueToStart(db, svc, counts.latency);
  log(`parent completion -> child start: ${counts.latency} pairs`);
  return { ...drain, enqueueToStart: toStart, releaseToStart: await releaseToStart(db, svc, counts.latency) };
});
// Drains with and without dashboards take turns (a service of their own each), so that a slower
// stretch of a shared machine does not land on one side only; the figure compares their means.
const DASHBOARD_ROUNDS = 2;
const dashboardDrain = Math.round(counts.processing / 2);
log(`processing with 5 dashboards open vs none: ${DASHBOARD_ROUNDS} rounds of ${dashboardDrain} payments each, alternating`);
const dashboardRates = { none: [] as number[], open: [] as number[] };
for (let r = 0; r < DASHBOARD_ROUNDS; r++) {
  for (const tabs of [0, 5]) {
    const drain = await withService(tabs ? "processing, 5 dashboards" : "processing, no dashboards", WORKERS, (svc) =>
      serviceProcessing(db, svc, dashboardDrain, { delayed: 0, statsEveryMs: 0, dashboards: tabs }),
    );
    (tabs ? dashboardRates.open : dashboardRates.none).push(drain.rate);
  }
}
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
log(`processing under load: ${counts.processing} payments, ${counts.delayed} delayed, GetQueueStats every ${UNDER_LOAD.statsEveryMs} ms`);
const loaded = await withService("processing under load", WORKERS, (svc) => serviceProcessing(db, svc, counts.processing, UNDER_LOAD));
const rawTries: { settings: RawWorkSettings; rate: number }[] = [];
for (const settings of quick ? RAW_WORK_SETTINGS.slice(0, 1) : RAW_WORK_SETTINGS) {
  log(`raw pg-boss processing: batchSize ${settings.batchSize}, localConcurrency ${settings.localConcurrency}`);
  rawTries.push({ settings, rate: (await rawProcessing(db, budget, counts.processing, settings)).rate });
}
const bestRaw = rawTries.reduce((a, b) => (b.rate > a.rate ? b : a));
log(`raw pg-boss processing under load (its best setting): ${counts.delayed} delayed, getQueue() every ${UNDER_LOAD.statsEveryMs} ms`);
const rawLoaded = await rawProcessing(db, budget, counts.processing, bestRaw.settings, UNDER_LOAD);
log(`WatchJob final event: ${counts.watchRounds} rounds of 50 jobs finishing together`);
const watch = await withService("WatchJob", WORKERS, (svc) => watchFinalEvent(svc, counts.watchRounds));
log(`external workers: an SDK worker drains ${counts.external} jobs; AddJob -> handler start; ${IDLE_WAITERS} idle long polls`);
const external = await withService("external workers", { WORKERS_ENABLED: "false" }, async (svc) => {
  await registerBenchType(svc);
  const drain = await sdkDrain(db, svc, counts.external);
  const start = await addToHandlerStart(svc, counts.latency);
  const idle = await idleLongPolls(svc, IDLE_WAITERS, counts.idleSeconds);
  return { drain, start, idle };
});
const rawNoop: { settings: RawWorkSettings; rate: number }[] = [];
for (const settings of quick ? RAW_WORK_SETTINGS.slice(1, 2) : RAW_WORK_SETTINGS) {
  log(`raw pg-boss no-op drain: batchSize ${settings.batchSize}, localConcurrency ${settings.localConcurrency}`);
  rawNoop.push({ settings, rate: await rawNoopDrain(db, budget, counts.external, settings) });
}
const bestRawNoop = rawNoop.reduce((a, b) => (b.rate > a.rate ? b : a));
let scale: ScaleFigures | undefined;
if (!quick) {
  log(`at scale: ${SCALE.reference} ready, then ${SCALE.backlog} more, then reads at ${SCALE.total} jobs`);
  // As deployed: the analytics rollups run every minute (GetMetrics reads them).
  scale = await withService("at scale", { ...WORKERS, ANALYTICS_SCHEDULE: "* * * * *" }, (svc) => atScale(db, svc, SCALE, log));
}
await db.stop();

/** A figure beside its goal: `reference` is raw pg-boss in the same run unless the figure says otherwise. */
interface Row {
  figure: string;
  value: number;
  reference?: number;
  /** At least this ratio to the reference, or at most this many milliseconds (or MiB). */
  goal: { ratio: number } | { atMost: number };
}
const rows: Row[] = [
  { figure: "batch enqueue, jobs/s (AddJobs x1000 vs insert())", value: batch.service, reference: batch.raw, goal: { ratio: 0.8 } },
  { figure: "unary enqueue, jobs/s (64 clients, AddJob vs send())", value: unary.service, reference: unary.raw, goal: { ratio: 2 } },
  { figure: `processing, jobs/s (${counts.processing} payments, ledger row each)`, value: fresh.rate, reference: bestRaw.rate, goal: { ratio: 0.8 } },
  {
    figure: "processing, 5 dashboards vs none, jobs/s (service, in turns)",
    value: mean(dashboardRates.open),
    reference: mean(dashboardRates.none),
    goal: { ratio: 0.95 },
  },
  {
    figure: `processing under load, jobs/s (+${counts.delayed} delayed, stats/10 ms)`,
    value: loaded.rate,
    reference: rawLoaded.rate,
    goal: { ratio: 0.8 },
  },
  ...(scale
    ? [
        {
          figure: `processing, ${SCALE.backlog} ready vs ${SCALE.reference} ready (service)`,
          value: scale.large,
          reference: scale.small,
          goal: { ratio: 0.9 },
        },
        ...scale.reads.map((r) => ({ figure: `${r.read} at ${SCALE.total} jobs, p50 ms`, value: r.latency.p50, goal: { atMost: 50 } })),
        ...(scale.paints ?? []).map((p) => ({
          figure: `dashboard ${p.page}, first useful paint at ${SCALE.total} jobs, p50 ms`,
          value: p.latency.p50,
          goal: { atMost: 1000 },
        })),
      ]
    : []),
  {
    figure: `external worker drain, jobs/s (SDK, no-op, ${counts.external} jobs vs work())`,
    value: external.drain,
    reference: bestRawNoop.rate,
    goal: { ratio: 0.5 },
  },
  { figure: "AddJob -> handler start in a waiting SDK worker, p50 ms", value: external.start.p50, goal: { atMost: 10 } },
  { figure: "AddJob -> handler start in a waiting SDK worker, p99 ms", value: external.start.p99, goal: { atMost: 50 } },
  { figure: `${IDLE_WAITERS} idle long polls: resident set added, MiB`, value: external.idle.rssAddedMb, goal: { atMost: 100 } },
  { figure: `${IDLE_WAITERS} idle long polls: CPU, % of a core`, value: external.idle.cpuShare * 100, goal: { atMost: 5 } },
  { figure: "enqueue -> start at light load, p50 ms", value: fresh.enqueueToStart.p50, goal: { atMost: 5 } },
  { figure: "enqueue -> start at light load, p99 ms", value: fresh.enqueueToStart.p99, goal: { atMost: 25 } },
  // The issue asks for "within milliseconds"; these bounds are ours.
  { figure: "parent completes -> child starts (depends_on), p50 ms", value: fresh.releaseToStart.p50, goal: { atMost: 10 } },
  { figure: "parent completes -> child starts (depends_on), p99 ms", value: fresh.releaseToStart.p99, goal: { atMost: 25 } },
  { figure: "WatchJob final event, 50 finishing together, p99 ms", value: watch.p99, goal: { atMost: 20 } },
  { figure: "service peak RSS over the run, MiB", value: Math.max(...Object.values(rss)), goal: { atMost: 250 } },
];
const verdict = (r: Row) => ("ratio" in r.goal ? r.value / r.reference! >= r.goal.ratio : r.value <= r.goal.atMost);
const num = (n: number | undefined, width: number) => (n === undefined ? "" : n >= 100 ? n.toFixed(0) : n.toFixed(1)).padStart(width);

console.log(
  `\nqueue-service vs raw pg-boss: PostgreSQL ${version}, ${cpus().length} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, ${quick ? "quick" : "full"} run\n`,
);
console.log(`${"figure".padEnd(66)} ${"service".padStart(8)} ${"ref.".padStart(8)}  ratio  goal`);
for (const r of rows) {
  const ratio = r.reference === undefined ? "" : (r.value / r.reference).toFixed(2);
  const goal = "ratio" in r.goal ? `>= ${r.goal.ratio}x` : `<= ${r.goal.atMost}`;
  console.log(`${r.figure.padEnd(66)} ${num(r.value, 8)} ${num(r.reference, 8)}  ${ratio.padStart(5)}  ${goal.padEnd(8)} ${verdict(r) ? "met" : "NOT met"}`);
}
console.log(
  `\nraw work() settings tried: ${rawTries.map((t) => `batchSize ${t.settings.batchSize} x localConcurrency ${t.settings.localConcurrency}: ${t.rate.toFixed(0)}/s`).join("; ")}`,
);
console.log(
  `GetQueueStats while draining (ms): p50 ${loaded.stats?.p50}, p99 ${loaded.stats?.p99} (n=${loaded.stats?.n}); raw getQueue(): p50 ${rawLoaded.stats?.p50}, p99 ${rawLoaded.stats?.p99} (n=${rawLoaded.stats?.n})`,
);
console.log(
  `enqueue -> start (ms): p50 ${fresh.enqueueToStart.p50}, p90 ${fresh.enqueueToStart.p90}, p99 ${fresh.enqueueToStart.p99} (n=${fresh.enqueueToStart.n})`,
);
console.log(
  `parent completes -> child starts (ms, from the completing transaction's start): p50 ${fresh.releaseToStart.p50}, p90 ${fresh.releaseToStart.p90}, p99 ${fresh.releaseToStart.p99} (n=${fresh.releaseToStart.n})`,
);
console.log(
  `processing with 5 dashboards vs none (jobs/s, in turn): ${dashboardRates.none.map((n, i) => `${n.toFixed(0)} / ${dashboardRates.open[i]!.toFixed(0)}`).join(", ")}`,
);
console.log(`WatchJob final event (ms): p50 ${watch.p50}, p90 ${watch.p90}, p99 ${watch.p99} (n=${watch.n})`);
console.log(
  `AddJob -> handler start (ms): p50 ${external.start.p50}, p90 ${external.start.p90}, p99 ${external.start.p99} (n=${external.start.n}); raw no-op settings: ${rawNoop.map((t) => `${t.settings.batchSize}x${t.settings.localConcurrency}: ${t.rate.toFixed(0)}/s`).join("; ")}`,
);
console.log(
  `service peak RSS by phase (MiB): ${Object.entries(rss)
    .map(([phase, mb]) => `${phase} ${mb}`)
    .join(", ")}`,
);
if (scale) console.log(`at scale: ${scale.small.toFixed(0)} jobs/s with ${SCALE.reference} ready, ${scale.large.toFixed(0)} with ${SCALE.backlog}`);

const result = {
  at: new Date().toISOString(),
  quick,
  postgres: version,
  cores: cpus().length,
  counts,
  connectionBudget: budget,
  figures: rows.map((r) => ({ ...r, met: verdict(r) })),
  rawWorkSettings: rawTries,
  rawNoopSettings: rawNoop,
  external,
  statsWhileDrainingMs: { service: loaded.stats, raw: rawLoaded.stats },
  dashboardRates,
  enqueueToStartMs: fresh.enqueueToStart,
  releaseToStartMs: fresh.releaseToStart,
  watchFinalEventMs: watch,
  scale,
  peakRssMb: rss,
};
mkdirSync(new URL("./results/", import.meta.url), { recursive: true });
const file = new URL(`./results/${result.at.replace(/[:.]/g, "-")}.json`, import.meta.url);
writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`, "utf8");
console.log(`\nwritten: bench/results/${file.pathname.split("/").pop()}`);
