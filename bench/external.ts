/**
 * External workers (WorkerService) against raw pg-boss:
 * - drain: a backlog of a registered type, no-op handler, run by a TypeScript SDK worker in a process
 *   of its own, against raw pg-boss `work()` with a no-op handler (its best setting);
 * - AddJob -> handler start, in a worker waiting in FetchJobs at light load (both clocks this machine's);
 * - the cost of idle long polls: `waiters` FetchJobs calls waiting at once on one replica, the
 *   service's resident set and CPU while they wait.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { WorkerService } from "../gen/jobs/v1/worker_service_pb.js";
import { type BenchDatabase, type BenchService, createRawQueue, loops, rawBoss, sleep, summary, until } from "./harness.js";
import type { RawWorkSettings } from "./processing.js";

export const EXTERNAL_TYPE = "bench:noop";
const root = fileURLToPath(new URL("..", import.meta.url));

/** Registers the bench's queue and job type (workers: the bench's own admin principal may fetch anything). */
export async function registerBenchType(svc: BenchService): Promise<void> {
  await svc.queues().createQueue({ queue: { name: "bench", policy: { concurrency: 100 } } });
  await svc.queues().registerJobType({ jobType: { name: EXTERNAL_TYPE, queue: "bench", payloadSchema: { type: "object" } } });
}

/** An SDK worker process. */
function sdkWorker(svc: BenchService, env: Record<string, string> = {}) {
  const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", "bench/sdk-worker.ts"], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", BENCH_URL: svc.baseUrl, BENCH_TOKEN: svc.token, BENCH_TYPE: EXTERNAL_TYPE, ...env },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    output: () => out,
    ready: () => until(async () => (out.includes("READY") ? 1 : 0), 1, 60_000),
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Jobs per second an SDK worker drains from a backlog of `jobs`. */
export async function sdkDrain(db: BenchDatabase, svc: BenchService, jobs: number): Promise<number> {
  await svc.queues().pauseQueue({ name: "bench" });
  const client = svc.jobs();
  await loops(2, Math.ceil(jobs / 1000), (n) =>
    client.addJobs({ jobs: Array.from({ length: Math.min(1000, jobs - n * 1000) }, (_, i) => ({ type: EXTERNAL_TYPE, payload: { n: n * 1000 + i } })) }),
  );
  // 300 jobs at once: its best setting here (100: ~1,300/s; 300: ~1,600/s; 1,000: no more).
  const worker = sdkWorker(svc, { BENCH_CONCURRENCY: "300" });
  await worker.ready();
  const completed = async () =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${svc.pgbossSchema}".job WHERE name = 'bench/bench.noop' AND state = 'completed'`))[0]!.n;
  const started = performance.now();
  await svc.queues().resumeQueue({ name: "bench" });
  const done = await until(completed, jobs);
  await worker.stop();
  return jobs / ((done - started) / 1000);
}

/** Raw pg-boss with a no-op handler; jobs per second. */
export async function rawNoopDrain(db: BenchDatabase, budget: number, jobs: number, settings: RawWorkSettings): Promise<number> {
  const raw = await rawBoss(db, budget, { supervise: true, schedule: false });
  try {
    await createRawQueue(raw.boss);
    for (let n = 0; n < jobs; n += 1000)
      await raw.boss.insert(
        "bench",
        Array.from({ length: Math.min(1000, jobs - n) }, (_, i) => ({ data: { n: n + i } })),
      );
    const completed = async () =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${raw.schema}".job WHERE name = 'bench' AND state = 'completed'`))[0]!.n;
    const started = performance.now();
    await raw.boss.work("bench", { ...settings, pollingIntervalSeconds: 0.5, burstWhenBatchFull: true }, async () => {});
    const done = await until(completed, jobs);
    return jobs / ((done - started) / 1000);
  } finally {
    await raw.stop();
  }
}

/** Milliseconds from AddJob to the handler's start in a worker waiting in FetchJobs, one job at a time. */
export async function addToHandlerStart(svc: BenchService, jobs: number) {
  const worker = sdkWorker(svc, { BENCH_CONCURRENCY: "4", BENCH_REPORT_STARTS: "1" });
  await worker.ready();
  await sleep(500); // its first FetchJobs is waiting
  const client = svc.jobs();
  const latencies: number[] = [];
  for (let i = 0; i < jobs; i++) {
    const sent = Date.now();
    const { job } = await client.addJob({ type: EXTERNAL_TYPE, payload: { i } });
    const line = new RegExp(`^START ${job!.id} (\\d+)$`, "m");
    const at = await until(async () => (line.test(worker.output()) ? 1 : 0), 1, 30_000).then(() => Number(line.exec(worker.output())![1]));
    latencies.push(at - sent);
    await sleep(20);
  }
  await worker.stop();
  return summary(latencies);
}

/** The service's resident set (MiB) and CPU seconds so far. */
function usage(pid: number): { rssMb: number; cpuS: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return { rssMb: rss, cpuS: (Number(fields[11]) + Number(fields[12])) / 100 };
}

/** What `waiters` idle FetchJobs calls cost the service: resident set added, and share of a core over `seconds`. */
export async function idleLongPolls(svc: BenchService, waiters: number, seconds: number) {
  const before = usage(svc.pid);
  // 50 connections, the calls spread over them (as a fleet of worker processes would hold them).
  const sessions = Array.from({ length: 50 }, () => new Http2SessionManager(svc.baseUrl));
  const clients = sessions.map((sessionManager) =>
    createClient(
      WorkerService,
      createGrpcTransport({
        baseUrl: svc.baseUrl,
        sessionManager,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${svc.token}`);
            return next(req);
          },
        ],
      }),
    ),
  );
  const stop = new AbortController();
  const polling = Array.from({ length: waiters }, async (_, i) => {
    while (!stop.signal.aborted) {
      await clients[i % clients.length]!.fetchJobs({ types: [EXTERNAL_TYPE], wait: { seconds: 30n } }, { signal: stop.signal }).catch(() => undefined);
    }
  });
  await sleep(3000); // all waiting
  const settled = usage(svc.pid);
  await sleep(seconds * 1000);
  const after = usage(svc.pid);
  stop.abort();
  await Promise.all(polling);
  for (const s of sessions) s.abort();
  return { waiters, rssAddedMb: Math.round(after.rssMb - before.rssMb), cpuShare: (after.cpuS - settled.cpuS) / seconds };
}
