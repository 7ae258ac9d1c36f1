/**
 * What the benchmarks share: a PostgreSQL (DATABASE_URL, else a throwaway embedded cluster), the
 * service as a real process (`node dist/src/main.js`) on schemas of its own, raw pg-boss on another
 * schema of the same database, gRPC clients, and percentiles.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import pg from "pg";
import { PgBoss } from "pg-boss";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { type EmbeddedPostgres, startEmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { freePort } from "../test/support/ports.js";
import { startFlags } from "../test/support/start-flags.js";

/** A database for a benchmark run. */
export interface BenchDatabase {
  url: string;
  root: string;
  query<T extends pg.QueryResultRow = any>(sql: string, values?: unknown[]): Promise<T[]>;
  stop(): Promise<void>;
}

/** DATABASE_URL, or a throwaway embedded PostgreSQL. */
export async function benchDatabase(): Promise<BenchDatabase> {
  const root = mkdtempSync(join(tmpdir(), "qs-bench-"));
  chmodSync(root, 0o755);
  let embedded: EmbeddedPostgres | undefined;
  if (!process.env.DATABASE_URL) embedded = await startEmbeddedPostgres({ dataDir: join(root, "pg"), ephemeral: true });
  const url = process.env.DATABASE_URL ?? embedded!.url;
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  return {
    url,
    root,
    query: async (sql, values) => (await pool.query(sql, values)).rows,
    stop: async () => {
      await pool.end();
      await embedded?.stop();
    },
  };
}

const mainJs = fileURLToPath(new URL("../dist/src/main.js", import.meta.url));

/** The service as a process of its own. */
export interface BenchService {
  baseUrl: string;
  token: string;
  pgbossSchema: string;
  schema: string;
  /** A gRPC client on a connection of its own. */
  jobs(): Client<typeof JobService>;
  queues(): Client<typeof QueueService>;
  monitoring(): Client<typeof MonitoringService>;
  /** The process's peak resident set so far, in MiB. */
  peakRssMb(): number;
  /** The service's process id. */
  readonly pid: number;
  stop(): Promise<void>;
}

const bearer =
  (token: string): Interceptor =>
  (next) =>
  (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };

export async function benchService(db: BenchDatabase, env: Record<string, string> = {}): Promise<BenchService> {
  const token = randomBytes(16).toString("hex");
  const suffix = randomBytes(4).toString("hex");
  const port = await freePort();
  const schema = `qs_bench_${suffix}`;
  const pgbossSchema = `pgboss_bench_${suffix}`;
  // npm start's node flags (the service as deployed), then SERVICE_NODE_FLAGS (a later flag wins).
  const nodeFlags = (process.env.SERVICE_NODE_FLAGS ?? "").split(" ").filter(Boolean);
  const child = spawn(process.execPath, [...startFlags, ...nodeFlags, mainJs], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/tmp",
      PORT: String(port),
      HOST: "127.0.0.1",
      DATABASE_URL: db.url,
      DATABASE_SCHEMA: schema,
      PGBOSS_SCHEMA: pgbossSchema,
      AUTH_TOKENS: `bench:admin:${token}`,
      DATA_DIR: mkdtempSync(join(db.root, "data-")),
      LOG_LEVEL: "warn",
      ANALYTICS_SCHEDULE: "",
      ...env,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const baseUrl = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    const ok = await fetch(`${baseUrl}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) throw new Error("the service did not become ready");
    await new Promise((r) => setTimeout(r, 100));
  }
  const sessions: Http2SessionManager[] = [];
  const transport = () => {
    const sessionManager = new Http2SessionManager(baseUrl);
    sessions.push(sessionManager);
    return createGrpcTransport({ baseUrl, sessionManager, interceptors: [bearer(token)] });
  };
  return {
    baseUrl,
    token,
    schema,
    pgbossSchema,
    jobs: () => createClient(JobService, transport()),
    queues: () => createClient(QueueService, transport()),
    monitoring: () => createClient(MonitoringService, transport()),
    pid: child.pid!,
    peakRssMb: () => {
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      return hwm ? Math.round(Number(hwm[1]) / 1024) : NaN;
    },
    async stop() {
      for (const s of sessions) s.abort();
      child.kill("SIGTERM");
      await exited;
      await db.query(`DROP SCHEMA IF EXISTS "${pgbossSchema}" CASCADE`);
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
}

/** Raw pg-boss on a schema of its own, with a pool of `max` connections. */
export async function rawBoss(db: BenchDatabase, max: number, options: Partial<ConstructorParameters<typeof PgBoss>[0] & object> = {}) {
  const schema = `pgboss_raw_${randomBytes(4).toString("hex")}`;
  const boss = new PgBoss({ connectionString: db.url, schema, max, ...options });
  boss.on("error", (err) => console.error("raw pg-boss:", err.message));
  await boss.start();
  return {
    boss,
    schema,
    async stop() {
      await boss.stop({ graceful: false, close: true });
      await db.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    },
  };
}

/**
 * The raw side's queue, shaped like the service's money queue (retries with backoff, expiry, a dead
 * letter queue), so both pay for the same pg-boss features (e.g. the dead letter foreign key).
 */
export async function createRawQueue(boss: PgBoss, name = "bench"): Promise<void> {
  await boss.createQueue(`${name}-dlq`);
  await boss.createQueue(name, { retryLimit: 3, retryDelay: 5, retryBackoff: true, expireInSeconds: 3600, deadLetter: `${name}-dlq` });
}

/**
 * Waits until `count()` reaches `n`, polling every 100 ms (the count itself is a query on the job
 * table, so it is kept rare next to the work it measures); returns when it did.
 */
export async function until(count: () => Promise<number>, n: number, timeoutMs = 900_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if ((await count()) >= n) return performance.now();
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${n}`);
    await sleep(100);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Calls `call` every `everyMs` (one call at a time: the next starts `everyMs` after the previous
 * one started, or right after it ended when it took longer) until stopped; `stop()` resolves with the
 * calls' latencies.
 */
export function poller(everyMs: number, call: () => Promise<unknown>) {
  let stopped = false;
  const latencies: number[] = [];
  const running = (async () => {
    while (!stopped) {
      const t0 = performance.now();
      await call();
      const took = performance.now() - t0;
      latencies.push(took);
      if (took < everyMs) await sleep(everyMs - took);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await running;
      return summary(latencies);
    },
  };
}

/** Runs `fn` in `concurrency` loops until `total` calls were made; returns the seconds it took. */
export async function loops(concurrency: number, total: number, fn: (i: number, loop: number) => Promise<unknown>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      for (let i = next++; i < total; i = next++) await fn(i, loop);
    }),
  );
  return (performance.now() - started) / 1000;
}

export interface Summary {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentiles of a sample, rounded to 0.01. */
export function summary(values: number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => +s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!.toFixed(2);
  return { n: s.length, p50: at(50), p90: at(90), p99: at(99), max: +s[s.length - 1]!.toFixed(2) };
}

/** A valid payment payload. */
export const paymentPayload = (i: number) => ({
  paymentId: `p${i}`,
  orderId: `o${i}`,
  customerId: "c",
  amount: 100,
  currency: "USD",
  paymentMethod: "tok_visa",
});
