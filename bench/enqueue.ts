/**
 * Enqueue throughput, the service over gRPC against raw pg-boss on the same database with the same
 * connection budget: batches (AddJobs of 1,000 vs `insert()` of 1,000) and single jobs from 64
 * concurrent clients (AddJob vs `send()`).
 */
import { AddJobRequestSchema, AddJobResponseSchema } from "../gen/jobs/v1/job_service_pb.js";
import { GrpcLoadClient } from "./grpc-load.js";
import { loops, paymentPayload, rawBoss, type BenchDatabase, type BenchService } from "./harness.js";

export interface Throughput {
  service: number;
  raw: number;
}

/** Jobs per second added in batches of `batch`, one call at a time. */
export async function batchEnqueue(db: BenchDatabase, svc: BenchService, budget: number, jobs: number, batch = 1000): Promise<Throughput> {
  const client = svc.jobs();
  const calls = Math.ceil(jobs / batch);
  const serviceBatch = (n: number) => client.addJobs({ jobs: Array.from({ length: batch }, (_, i) => ({ type: "payment:process", payload: paymentPayload(n * batch + i) })) });
  await serviceBatch(-1); // warm-up
  const serviceSeconds = await loops(1, calls, serviceBatch);

  const raw = await rawBoss(db, budget, { supervise: false, schedule: false });
  try {
    await raw.boss.createQueue("bench");
    const rawBatch = (n: number) => raw.boss.insert("bench", Array.from({ length: batch }, (_, i) => ({ data: paymentPayload(n * batch + i) })));
    await rawBatch(-1);
    const rawSeconds = await loops(1, calls, rawBatch);
    return { service: (calls * batch) / serviceSeconds, raw: (calls * batch) / rawSeconds };
  } finally {
    await raw.stop();
  }
}

/** Jobs per second added one per call by `clients` concurrent clients, each on its own connection. */
export async function unaryEnqueue(db: BenchDatabase, svc: BenchService, budget: number, jobs: number, clients = 64): Promise<Throughput> {
  const grpc = Array.from({ length: clients }, () => new GrpcLoadClient(svc.baseUrl, svc.token));
  const add = (i: number, loop: number) =>
    grpc[loop]!.call("/jobs.v1.JobService/AddJob", AddJobRequestSchema, AddJobResponseSchema, { type: "payment:process", payload: paymentPayload(i) });
  await loops(clients, clients * 4, add); // warm-up: connections, JIT
  const serviceSeconds = await loops(clients, jobs, add);
  for (const c of grpc) c.close();

  const raw = await rawBoss(db, budget, { supervise: false, schedule: false });
  try {
    await raw.boss.createQueue("bench");
    const send = (i: number) => raw.boss.send("bench", paymentPayload(i));
    await loops(clients, clients * 4, send);
    const rawSeconds = await loops(clients, jobs, send);
    return { service: jobs / serviceSeconds, raw: jobs / rawSeconds };
  } finally {
    await raw.stop();
  }
}
