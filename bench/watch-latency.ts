/**
 * WatchJob final-event latency at light load: a job is watched over gRPC, then completed by a plain
 * pg-boss client (as a worker of another replica would); the latency is from just before the
 * completion is sent to the moment the COMPLETED event reaches the watcher (through the capture
 * trigger, NOTIFY, the event feed and the stream).
 *
 *   npx tsx bench/watch-latency.ts [jobs=200]
 */
import { PgBoss } from "pg-boss";
import { benchDatabase, benchService, paymentPayload, summary } from "./harness.js";

const count = Number(process.argv[2] ?? 200);
const db = await benchDatabase();
const svc = await benchService(db, { WORKERS_ENABLED: "false" });
const boss = new PgBoss({ connectionString: db.url, schema: svc.config.pgbossSchema, supervise: false, migrate: false, schedule: false, registerInstance: false, max: 2 });
boss.on("error", () => {});
await boss.start();
const latencies: number[] = [];
for (let i = 0; i < count; i++) {
  const { job } = await svc.jobs.addJob({ type: "payment:process", payload: paymentPayload(i) });
  const stream = svc.jobs.watchJob({ id: job!.id })[Symbol.asyncIterator]();
  await stream.next(); // the snapshot
  const [fetched] = await boss.fetch("money/payment.process", { batchSize: 1 });
  const started = await stream.next(); // STARTED
  if (!fetched || started.done) throw new Error("the job did not start");
  const t0 = performance.now();
  await boss.complete("money/payment.process", { id: fetched.id, retryCount: fetched.retryCount }, { ok: true });
  const done = await stream.next();
  latencies.push(performance.now() - t0);
  if (done.done) throw new Error("the stream ended without the final event");
  await stream.return?.(undefined);
  await new Promise((r) => setTimeout(r, 10));
}
console.log(JSON.stringify({ jobs: count, finalEventLatencyMs: summary(latencies) }));
await boss.stop({ graceful: false, close: true });
await svc.stop();
await db.stop();
