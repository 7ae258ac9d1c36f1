/**
 * Latencies: enqueue -> start at light load (jobs added one at a time, each started by a worker of
 * the same service; `started_on - created_on`, both from PostgreSQL's clock), and WatchJob's final
 * event with many jobs finishing together in the service's workers (`occurred_at` to arrival; one
 * machine, one clock).
 */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { JobEventType } from "../gen/jobs/v1/job_pb.js";
import { type BenchDatabase, type BenchService, paymentPayload, sleep, summary, until } from "./harness.js";

/** Milliseconds from AddJob's commit to the job's start. Needs a service with workers. */
export async function enqueueToStart(db: BenchDatabase, svc: BenchService, jobs: number, pauseMs = 20) {
  const client = svc.jobs();
  const ids: string[] = [];
  for (let i = 0; i < jobs; i++) {
    ids.push((await client.addJob({ type: "payment:process", payload: paymentPayload(i) })).job!.id);
    await sleep(pauseMs);
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

/**
 * Milliseconds from a parent's completion to its child's start (`started_on - completed_on`, both
 * from PostgreSQL's clock): pairs added one at a time with AddJobs, the child depending on the
 * parent by batch index. Needs a service with workers.
 */
export async function releaseToStart(db: BenchDatabase, svc: BenchService, pairs: number, pauseMs = 20) {
  const client = svc.jobs();
  const links: { parent: string; child: string }[] = [];
  for (let i = 0; i < pairs; i++) {
    const { results } = await client.addJobs({
      jobs: [
        { type: "payment:process", payload: paymentPayload(1_000_000 + 2 * i) },
        { type: "payment:process", payload: paymentPayload(1_000_001 + 2 * i), options: { dependsOnBatchIndexes: [0] } },
      ],
    });
    links.push({ parent: results[0]!.job!.id, child: results[1]!.job!.id });
    await sleep(pauseMs);
  }
  const table = `"${svc.pgbossSchema}".job`;
  const children = links.map((l) => l.child);
  await until(
    async () =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table} WHERE id = ANY($1::uuid[]) AND started_on IS NOT NULL`, [children]))[0]!.n,
    children.length,
  );
  const rows = await db.query<{ ms: number }>(
    `SELECT extract(epoch FROM c.started_on - p.completed_on) * 1000 AS ms
     FROM unnest($1::uuid[], $2::uuid[]) AS l(parent, child)
     JOIN ${table} p ON p.id = l.parent JOIN ${table} c ON c.id = l.child`,
    [links.map((l) => l.parent), children],
  );
  return summary(rows.map((r) => Number(r.ms)));
}

/**
 * Milliseconds from a COMPLETED event's `occurred_at` to its arrival at the WatchJob stream, with
 * `together` jobs finishing at once: each round adds them to the paused money queue, opens a watch
 * on each, and resumes the queue, so that the service's workers run and complete them together.
 * Needs a service with workers.
 */
export async function watchFinalEvent(svc: BenchService, rounds: number, together = 50) {
  const client = svc.jobs();
  const queues = svc.queues();
  const latencies: number[] = [];
  for (let round = 0; round < rounds; round++) {
    await queues.pauseQueue({ name: "money" });
    const { results } = await client.addJobs({
      jobs: Array.from({ length: together }, (_, i) => ({ type: "payment:process", payload: paymentPayload(round * together + i) })),
    });
    const streams = results.map((r) => client.watchJob({ id: r.job!.id })[Symbol.asyncIterator]());
    await Promise.all(streams.map((s) => s.next())); // the snapshots
    // Each stream is read as its events land, so that an arrival is timed when it happens.
    const finals = streams.map(async (s) => {
      for (;;) {
        const next = await s.next();
        const arrived = Date.now();
        if (next.done) throw new Error("the stream ended without the final event");
        if (next.value.event?.type === JobEventType.COMPLETED) return arrived - timestampMs(next.value.event.occurredAt!);
      }
    });
    await queues.resumeQueue({ name: "money" });
    latencies.push(...(await Promise.all(finals)));
  }
  return summary(latencies);
}
