/**
 * Enqueue -> start latency at light load: jobs added one at a time over gRPC (a pause between them),
 * each started by a worker of the same service. Latency is `started_on - created_on` of each job,
 * both read from PostgreSQL's clock: from the AddJob transaction to the worker's fetch.
 *
 *   npx tsx bench/dispatch-latency.ts [jobs=300] [pauseMs=20]
 */
import pg from "pg";
import { benchDatabase, benchService, paymentPayload, summary } from "./harness.js";

const jobs = Number(process.argv[2] ?? 300);
const pauseMs = Number(process.argv[3] ?? 20);
const db = await benchDatabase();
const svc = await benchService(db, { WORKERS_ENABLED: "true" });
const ids: string[] = [];
for (let i = 0; i < jobs; i++) {
  ids.push((await svc.jobs.addJob({ type: "payment:process", payload: paymentPayload(i) })).job!.id);
  await new Promise((r) => setTimeout(r, pauseMs));
}
const client = new pg.Client(db.url);
await client.connect();
const table = `"${svc.config.pgbossSchema}".job`;
while ((await client.query(`SELECT count(*)::int AS n FROM ${table} WHERE id = ANY($1::uuid[]) AND started_on IS NOT NULL`, [ids])).rows[0].n < ids.length) {
  await new Promise((r) => setTimeout(r, 50));
}
const { rows } = await client.query<{ ms: number }>(`SELECT extract(epoch FROM started_on - created_on) * 1000 AS ms FROM ${table} WHERE id = ANY($1::uuid[])`, [ids]);
console.log(JSON.stringify({ jobs, pauseMs, enqueueToStartMs: summary(rows.map((r) => Number(r.ms))) }));
await client.end();
await svc.stop();
await db.stop();
