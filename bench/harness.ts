/**
 * What the benchmarks share: a PostgreSQL (DATABASE_URL, else a throwaway embedded cluster), the
 * service started in-process on its own schemas, clients, and percentiles.
 */
import { chmodSync, mkdtempSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { startService, type Service } from "../src/app.js";
import { loadConfig, type Config } from "../src/config.js";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { createLogger } from "../src/logger.js";

/** A database for a benchmark run. */
export interface BenchDatabase {
  url: string;
  root: string;
  stop(): Promise<void>;
}

/** DATABASE_URL, or a throwaway embedded PostgreSQL. */
export async function benchDatabase(): Promise<BenchDatabase> {
  const root = mkdtempSync(join(tmpdir(), "qs-bench-"));
  chmodSync(root, 0o755);
  let embedded: EmbeddedPostgres | undefined;
  if (!process.env.DATABASE_URL) embedded = await startEmbeddedPostgres({ dataDir: join(root, "pg"), ephemeral: true });
  return { url: process.env.DATABASE_URL ?? embedded!.url, root, stop: async () => void (await embedded?.stop()) };
}

/** The service on schemas of its own, with an admin token. */
export interface BenchService {
  service: Service;
  config: Config;
  token: string;
  baseUrl: string;
  jobs: Client<typeof JobService>;
  stop(): Promise<void>;
}

export async function benchService(db: BenchDatabase, env: Record<string, string> = {}): Promise<BenchService> {
  const token = randomBytes(16).toString("hex");
  const suffix = randomBytes(4).toString("hex");
  const config = loadConfig({
    PORT: "0", DATABASE_URL: db.url, DATABASE_SCHEMA: `qs_bench_${suffix}`, PGBOSS_SCHEMA: `pgboss_bench_${suffix}`,
    AUTH_TOKENS: `bench:admin:${token}`, DATA_DIR: db.root, LOG_LEVEL: "warn", ANALYTICS_SCHEDULE: "", ...env,
  });
  const service = await startService(config, createLogger("warn"));
  await service.ready;
  const baseUrl = `http://127.0.0.1:${service.port}`;
  const jobs = createClient(JobService, createGrpcTransport({ baseUrl, interceptors: [(next) => (req) => { req.header.set("authorization", `Bearer ${token}`); return next(req); }] }));
  return {
    service, config, token, baseUrl, jobs,
    async stop() {
      await service.stop();
      const c = new pg.Client(db.url);
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS "${config.pgbossSchema}" CASCADE; DROP SCHEMA IF EXISTS "${config.databaseSchema}" CASCADE`).catch(() => {});
      await c.end();
    },
  };
}

/** Nearest-rank percentiles of a sample, rounded to 0.01. */
export function summary(values: number[]): { n: number; p50: number; p90: number; p99: number; max: number } {
  const s = [...values].sort((a, b) => a - b);
  const at = (p: number) => +s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!.toFixed(2);
  return { n: s.length, p50: at(50), p90: at(90), p99: at(99), max: +s[s.length - 1]!.toFixed(2) };
}

/** A valid payment payload. */
export const paymentPayload = (i: number) => ({ paymentId: `p${i}`, orderId: "o", customerId: "c", amount: 100, currency: "USD", paymentMethod: "tok_visa" });
