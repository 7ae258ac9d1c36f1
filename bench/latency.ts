/**
 * Latencies at light load: enqueue -> start (jobs added one at a time, each started by a worker of
 * the same service; `started_on - created_on`, both from PostgreSQL's clock), and WatchJob's final
 * event (from just before a completion is sent, by a plain pg-boss client as another replica's worker
 * would, to the COMPLETED event reaching the watcher).
 */
import { PgBoss } from "pg-boss";
import { type BenchDatabase, type BenchService, paymentPayload, summary, until } from "./harness.js";

/** Milliseconds from AddJob's commit to the job's start. Needs a service with workers. */
export async function enqueueToStart(db: BenchDatabase, svc: BenchService, jobs: number, pauseMs = 20) {
  const client = svc.jobs();
  const ids: string[] = [];
  for (let i = 0; i < jobs; i++) {
    ids.push((await client.addJob({ type: "payment:process", payload: paymentPayload(i) })).job!.id);
    await new Promise((r) => setTimeout(r, pauseMs));
  }
  const table = `"${svc.pgbossSchema}".job`;
  await until(
    async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE id = ANY($1::uuid[]) AND started_on IS NOT NULL`, [ids]))[0]!.n,
    ids.length,
  );
  const rows = await db.query<{ ms: number }>(`SELECT extract(epoch FROM started_on - created_on) * 1000 AS ms FROM ${table} WHERE id = ANY($1::uuid[])`, [
    ids,
  ]);
  return summary(rows.map((r) => Number(r.ms)));
}

/** Milliseconds from a completion to WatchJob's COMPLETED event. Needs a service without workers. */
export async function watchFinalEvent(db: BenchDatabase, svc: BenchService, jobs: number) {
  const client = svc.jobs();
  const boss = new PgBoss({
    connectionString: db.url,
    schema: svc.pgbossSchema,
    supervise: false,
    migrate: false,
    schedule: false,
    registerInstance: false,
    max: 2,
  });
  boss.on("error", () => {});
  await boss.start();
  const latencies: number[] = [];
  try {
    for (let i = 0; i < jobs; i++) {
      const { job } = await client.addJob({ type: "payment:process", payload: paymentPayload(i) });
      const stream = client.watchJob({ id: job!.id })[Symbol.asyncIterator]();
      await stream.next(); // the snapshot
      const [fetched] = await boss.fetch("money/payment.process", { batchSize: 1 });
      const started = await stream.next(); // STARTED
      if (!fetched || fetched.id !== job!.id || started.done) throw new Error("the job did not start");
      const t0 = performance.now();
      await boss.complete("money/payment.process", { id: fetched.id, retryCount: fetched.retryCount }, { ok: true });
      const done = await stream.next();
      latencies.push(performance.now() - t0);
      if (done.done) throw new Error("the stream ended without the final event");
      await stream.return?.(undefined);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    await boss.stop({ graceful: false, close: true });
  }
  return summary(latencies);
}
