/**
 * Enqueue throughput, the service over gRPC against raw pg-boss on the same database with the same
 * connection budget: batches (AddJobs of 1,000 vs `insert()` of 1,000) and single jobs from 64
 * concurrent clients (AddJob vs `send()`). The two sides take turns in three rounds, so that neither
 * gets a warmer database or a quieter machine than the other.
 */
import { AddJobRequestSchema, AddJobResponseSchema } from "../gen/jobs/v1/job_service_pb.js";
import { GrpcLoadClient } from "./grpc-load.js";
import { type BenchDatabase, type BenchService, createRawQueue, loops, paymentPayload, rawBoss } from "./harness.js";

export interface Throughput {
  service: number;
  raw: number;
}

/** Rounds each side runs, alternating, so that neither gets a warmer database than the other. */
const ROUNDS = 3;

/** Runs `service` and `raw` alternately, `total` calls each split over ROUNDS; returns seconds per side. */
async function alternate(total: number, service: (n: number) => Promise<number>, raw: (n: number) => Promise<number>) {
  const seconds = { service: 0, raw: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    const n = Math.round((total * (r + 1)) / ROUNDS) - Math.round((total * r) / ROUNDS);
    seconds.service += await service(n);
    seconds.raw += await raw(n);
  }
  return seconds;
}

/** Jobs per second added in batches of `batch`, one call at a time. */
export async function batchEnqueue(db: BenchDatabase, svc: BenchService, budget: number, jobs: number, batch = 1000): Promise<Throughput> {
  const client = svc.jobs();
  const calls = Math.ceil(jobs / batch);
  const raw = await rawBoss(db, budget, { supervise: false, schedule: false });
  try {
    await createRawQueue(raw.boss);
    let i = 0;
    const payloads = () => Array.from({ length: batch }, () => paymentPayload(i++));
    const serviceBatch = () => client.addJobs({ jobs: payloads().map((payload) => ({ type: "payment:process", payload })) });
    const rawBatch = () =>
      raw.boss.insert(
        "bench",
        payloads().map((data) => ({ data })),
      );
    await serviceBatch(); // warm-up: connections, JIT
    await rawBatch();
    const seconds = await alternate(
      calls,
      (n) => loops(1, n, serviceBatch),
      (n) => loops(1, n, rawBatch),
    );
    return { service: (calls * batch) / seconds.service, raw: (calls * batch) / seconds.raw };
  } finally {
    await raw.stop();
  }
}

/** Jobs per second added one per call by `clients` concurrent clients, each on its own connection. */
export async function unaryEnqueue(db: BenchDatabase, svc: BenchService, budget: number, jobs: number, clients = 64): Promise<Throughput> {
  const grpc = Array.from({ length: clients }, () => new GrpcLoadClient(svc.baseUrl, svc.token));
  const raw = await rawBoss(db, budget, { supervise: false, schedule: false });
  try {
    await createRawQueue(raw.boss);
    const add = (i: number, loop: number) =>
      grpc[loop]!.call("/jobs.v1.JobService/AddJob", AddJobRequestSchema, AddJobResponseSchema, { type: "payment:process", payload: paymentPayload(i) });
    const send = (i: number) => raw.boss.send("bench", paymentPayload(i));
    await loops(clients, clients * 4, add); // warm-up: connections, JIT
    await loops(clients, clients * 4, send);
    const seconds = await alternate(
      jobs,
      (n) => loops(clients, n, add),
      (n) => loops(clients, n, send),
    );
    return { service: jobs / seconds.service, raw: jobs / seconds.raw };
  } finally {
    for (const c of grpc) c.close();
    await raw.stop();
  }
}
