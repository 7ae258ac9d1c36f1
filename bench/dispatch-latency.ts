/**
 * Enqueue -> start latency at light load: jobs added one at a time over gRPC (a pause between them),
 * each started by a worker of the same service. Latency is `started_on - created_on` of each job,
 * both read from PostgreSQL's clock: from the AddJob transaction to the worker's fetch.
 *
 *   npx tsx bench/dispatch-latency.ts [jobs=300] [pauseMs=20]
 *
 * Uses DATABASE_URL when set, else a throwaway embedded PostgreSQL.
 */
import { mkdtempSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import pg from "pg";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { startService } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { startEmbeddedPostgres } from "../src/db/embedded-postgres.js";
import { createLogger } from "../src/logger.js";

const jobs = Number(process.argv[2] ?? 300);
const pauseMs = Number(process.argv[3] ?? 20);
const token = randomBytes(16).toString("hex");
const suffix = randomBytes(4).toString("hex");

const root = mkdtempSync(join(tmpdir(), "qs-bench-"));
chmodSync(root, 0o755);
const embedded = process.env.DATABASE_URL ? undefined : await startEmbeddedPostgres({ dataDir: join(root, "pg"), ephemeral: true });
const url = process.env.DATABASE_URL ?? embedded!.url;
const config = loadConfig({
  PORT: "0", DATABASE_URL: url, DATABASE_SCHEMA: `qs_bench_${suffix}`, PGBOSS_SCHEMA: `pgboss_bench_${suffix}`,
  AUTH_TOKENS: `bench:admin:${token}`, DATA_DIR: root, LOG_LEVEL: "warn", WORKERS_ENABLED: "true",
});
const service = await startService(config, createLogger("warn"));
await service.ready;
const api = createClient(JobService, createGrpcTransport({
  baseUrl: `http://127.0.0.1:${service.port}`,
  interceptors: [(next) => (req) => { req.header.set("authorization", `Bearer ${token}`); return next(req); }],
}));

const ids: string[] = [];
for (let i = 0; i < jobs; i++) {
  const { job } = await api.addJob({ type: "payment:process", payload: { paymentId: `p${i}`, orderId: "o", customerId: "c", amount: 100, currency: "USD", paymentMethod: "tok_visa" } });
  ids.push(job!.id);
  await new Promise((r) => setTimeout(r, pauseMs));
}
const db = new pg.Client(url);
await db.connect();
for (;;) {
  const { rows } = await db.query(`SELECT count(*)::int AS n FROM "${config.pgbossSchema}".job WHERE id = ANY($1::uuid[]) AND started_on IS NOT NULL`, [ids]);
  if (rows[0].n === ids.length) break;
  await new Promise((r) => setTimeout(r, 50));
}
const { rows } = await db.query<{ ms: number }>(
  `SELECT extract(epoch FROM started_on - created_on) * 1000 AS ms FROM "${config.pgbossSchema}".job WHERE id = ANY($1::uuid[]) ORDER BY 1`, [ids]);
const ms = rows.map((r) => Number(r.ms));
const pct = (p: number) => ms[Math.min(ms.length - 1, Math.ceil((p / 100) * ms.length) - 1)]!;
console.log(JSON.stringify({ jobs, pauseMs, enqueueToStartMs: { p50: +pct(50).toFixed(2), p90: +pct(90).toFixed(2), p99: +pct(99).toFixed(2), max: +ms[ms.length - 1]!.toFixed(2) } }));
await db.query(`DROP SCHEMA "${config.pgbossSchema}" CASCADE; DROP SCHEMA "${config.databaseSchema}" CASCADE`).catch(() => {});
await db.end();
await service.stop();
await embedded?.stop();
