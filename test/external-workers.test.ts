/**
 * Your own job types and external workers, through the public API on a real service and database:
 * queues and job types registered with validation; payloads checked against the type's JSON Schema;
 * producers and workers lists enforced; FetchJobs long polls woken by a new job; leases fenced to the
 * attempt (LEASE_LOST once another attempt runs); progress in Job.progress and WatchJob; a cancel
 * reaches the worker's heartbeat; pause stops fetches; waiting fetches are capped and freed at once;
 * a second replica sees a new type at once.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobEvent, JobEventType, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { LeaseState, WorkerService } from "../gen/jobs/v1/worker_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, errorInfo, failure, violations } from "./support/errors.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
const api = (token: string, baseUrl = () => svc.baseUrl) => ({
  jobs: client(JobService, baseUrl(), { protocol: "grpc", token }),
  queues: client(QueueService, baseUrl(), { protocol: "grpc", token }),
  workers: client(WorkerService, baseUrl(), { protocol: "grpc", token }),
});
let admin: ReturnType<typeof api>;
let svcA: ReturnType<typeof api>;
let svcB: ReturnType<typeof api>;
let wrkA: ReturnType<typeof api>;
let wrkB: ReturnType<typeof api>;

const invoiceSchema = {
  type: "object",
  properties: {
    invoiceId: { type: "string", minLength: 1 },
    amount: { type: "integer", minimum: 1 },
    lines: { type: "array", items: { type: "string" }, maxItems: 10 },
  },
  required: ["invoiceId", "amount"],
  additionalProperties: false,
};
const invoice = (over: Record<string, unknown> = {}) => ({ invoiceId: `inv_${Math.random().toString(36).slice(2)}`, amount: 100, ...over });

beforeAll(async () => {
  svc = await startTestService(db, { MAX_WAITING_FETCHES_PER_PRINCIPAL: "2" });
  admin = api(tokens.admin);
  svcA = api(tokens.serviceA);
  svcB = api(tokens.serviceB);
  wrkA = api(tokens.workerA);
  wrkB = api(tokens.workerB);
  await admin.queues.createQueue({ queue: { name: "billing", description: "Invoices", policy: { retryLimit: 2, retryBackoff: false } } });
  await admin.queues.registerJobType({
    jobType: { name: "invoice:render", queue: "billing", payloadSchema: invoiceSchema, producers: ["svc-a"], workers: ["wrk-a"], description: "Renders a PDF" },
  });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

/** Fetches one job of `invoice:render` as wrk-a, waiting for it. */
async function fetchOne(wait = 5) {
  const { jobs } = await wrkA.workers.fetchJobs({ types: ["invoice:render"], maxJobs: 1, wait: { seconds: BigInt(wait) } });
  expect(jobs).toHaveLength(1);
  return jobs[0]!;
}

describe("queues and job types of your own", () => {
  it("are listed with the built-in ones, with their schema, producers and workers", async () => {
    const { jobTypes } = await svcA.queues.listJobTypes({});
    const render = jobTypes.find((t) => t.name === "invoice:render")!;
    expect(render).toMatchObject({ queue: "billing", producers: ["svc-a"], workers: ["wrk-a"], builtIn: false, description: "Renders a PDF" });
    expect(render.payloadSchema).toEqual(invoiceSchema);
    expect(jobTypes.find((t) => t.name === "payment:process")).toMatchObject({ builtIn: true, producers: ["*"] });
    const { queues } = await svcA.queues.listQueues({});
    expect(queues.find((q) => q.name === "billing")).toMatchObject({ jobTypes: ["invoice:render"], builtIn: false, policy: { retryLimit: 2 } });
  });

  it("refuse bad names, schemas and queues, naming the field, and change nothing", async () => {
    const bad = async (jobType: Record<string, unknown>) => violations(await failure(admin.queues.registerJobType({ jobType })));
    expect(await bad({ name: "Invoice", queue: "billing", payloadSchema: invoiceSchema })).toEqual([
      expect.objectContaining({ field: "job_type.name", reason: "INVALID_FORMAT" }),
    ]);
    expect(await bad({ name: "invoice:x", queue: "billing", payloadSchema: { type: "object", properties: { a: { type: "strang" } } } })).toEqual([
      expect.objectContaining({ field: "job_type.payload_schema", reason: "INVALID_SCHEMA" }),
    ]);
    expect(await bad({ name: "invoice:x", queue: "billing", payloadSchema: { type: "object", colour: "red" } })).toEqual([
      expect.objectContaining({ field: "job_type.payload_schema", reason: "INVALID_SCHEMA" }),
    ]);
    expect(await bad({ name: "invoice:x", queue: "nowhere", payloadSchema: invoiceSchema })).toEqual([
      expect.objectContaining({ field: "job_type.queue", reason: "UNKNOWN_QUEUE" }),
    ]);
    expect(await bad({ name: "invoice:x", queue: "billing", payloadSchema: invoiceSchema, workers: ["bad name"] })).toEqual([
      expect.objectContaining({ field: "job_type.workers[0]", reason: "INVALID_FORMAT" }),
    ]);
    expect((await failure(admin.queues.registerJobType({ jobType: { name: "invoice:render", queue: "billing", payloadSchema: invoiceSchema } }))).code).toBe(
      Code.AlreadyExists,
    );
    expect(violations(await failure(admin.queues.createQueue({ queue: { name: "Bad Name" } })))[0]).toMatchObject({ field: "queue.name" });
    expect(violations(await failure(admin.queues.createQueue({ queue: { name: "q2", policy: { retryLimit: 50 } } })))[0]).toMatchObject({
      field: "queue.policy.retry_limit",
      reason: "OUT_OF_RANGE",
    });
    expect((await failure(admin.queues.createQueue({ queue: { name: "billing" } }))).code).toBe(Code.AlreadyExists);
    expect((await failure(admin.queues.createQueue({ queue: { name: "money" } }))).code).toBe(Code.AlreadyExists);
    const { jobTypes } = await admin.queues.listJobTypes({});
    expect(jobTypes.map((t) => t.name)).not.toContain("invoice:x");
    expect((await failure(svcA.queues.registerJobType({ jobType: { name: "a:b", queue: "billing", payloadSchema: {} } }))).code).toBe(Code.PermissionDenied);
  });

  it("validate payloads against the type's schema, for its producers only", async () => {
    const err = await failure(svcA.jobs.addJob({ type: "invoice:render", payload: { invoiceId: "", amount: 0, extra: 1, lines: [3] } }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violations(err).map((v) => `${v.field} ${v.reason}`)).toEqual(
      expect.arrayContaining(["payload.extra UNKNOWN_FIELD", "payload.invoiceId TOO_SMALL", "payload.amount TOO_SMALL", "payload.lines[0] INVALID_TYPE"]),
    );
    expect(violations(await failure(svcA.jobs.addJob({ type: "invoice:render", payload: { amount: 5 } })))).toEqual([
      expect.objectContaining({ field: "payload.invoiceId", reason: "REQUIRED" }),
    ]);
    expect((await failure(svcB.jobs.addJob({ type: "invoice:render", payload: invoice() }))).code).toBe(Code.PermissionDenied);
    expect((await failure(wrkA.jobs.addJob({ type: "invoice:render", payload: invoice() }))).code).toBe(Code.PermissionDenied);
    const { job } = await svcA.jobs.addJob({ type: "invoice:render", payload: invoice(), options: { idempotencyKey: "inv-1" } });
    expect(job).toMatchObject({ type: "invoice:render", queue: "billing", state: JobState.CREATED, retryLimit: 2 });
    expect((await svcA.jobs.addJob({ type: "invoice:render", payload: job!.payload, options: { idempotencyKey: "inv-1" } })).deduplicated).toBe(true);
    await admin.jobs.cancelJob({ id: job!.id });
  });

  it("update by field mask, and delete only when nothing is left", async () => {
    const { jobType } = await admin.queues.updateJobType({
      jobType: { name: "invoice:render", producers: ["svc-a", "svc-b"] },
      updateMask: { paths: ["producers"] },
    });
    expect(jobType).toMatchObject({ producers: ["svc-a", "svc-b"], workers: ["wrk-a"] });
    expect(jobType!.payloadSchema).toEqual(invoiceSchema);
    const { job } = await svcB.jobs.addJob({ type: "invoice:render", payload: invoice() });
    expect(violations(await failure(admin.queues.updateJobType({ jobType: { name: "invoice:render" }, updateMask: { paths: ["queue"] } })))[0]).toMatchObject({
      field: "update_mask",
    });
    await admin.queues.registerJobType({ jobType: { name: "invoice:archive", queue: "billing", payloadSchema: { type: "object" } } });
    const { job: archived } = await admin.jobs.addJob({ type: "invoice:archive", payload: {} });
    expect((await failure(admin.queues.deleteJobType({ name: "invoice:archive" }))).code).toBe(Code.FailedPrecondition);
    expect((await failure(admin.queues.deleteQueue({ name: "billing" }))).code).toBe(Code.FailedPrecondition);
    expect((await failure(admin.queues.deleteQueue({ name: "money" }))).code).toBe(Code.FailedPrecondition);
    await admin.jobs.cancelJob({ id: archived!.id });
    await admin.jobs.cancelJob({ id: job!.id });
    await admin.queues.deleteJobType({ name: "invoice:archive" });
    expect((await failure(admin.jobs.addJob({ type: "invoice:archive", payload: {} }))).code).toBe(Code.InvalidArgument);
    await admin.queues.createQueue({ queue: { name: "scratch" } });
    await admin.queues.deleteQueue({ name: "scratch" });
    expect((await admin.queues.listQueues({})).queues.map((q) => q.name)).not.toContain("scratch");
  });
});

describe("external workers", () => {
  it("fetch only the types that name them", async () => {
    expect((await failure(wrkB.workers.fetchJobs({ types: ["invoice:render"] }))).code).toBe(Code.PermissionDenied);
    expect((await failure(wrkA.workers.fetchJobs({ types: ["payment:process"] }))).code).toBe(Code.PermissionDenied);
    expect((await failure(svcA.workers.fetchJobs({ types: ["invoice:render"] }))).code).toBe(Code.PermissionDenied);
    expect(violations(await failure(wrkA.workers.fetchJobs({ types: ["nope:nope"] })))[0]).toMatchObject({ field: "types[0]", reason: "UNKNOWN_JOB_TYPE" });
    expect(violations(await failure(wrkA.workers.fetchJobs({ types: ["invoice:render"], maxJobs: 500 })))[0]).toMatchObject({ field: "max_jobs" });
    expect((await wrkA.workers.fetchJobs({ types: ["invoice:render"] })).jobs).toEqual([]);
  });

  it("run a job to COMPLETED with progress, and a repeated completion changes nothing", async () => {
    const { job } = await svcA.jobs.addJob({ type: "invoice:render", payload: invoice() });
    const watching = (async () => {
      const out: JobEvent[] = [];
      for await (const m of svcA.jobs.watchJob({ id: job!.id })) out.push(m.event!);
      return out;
    })();
    await eventually(async () => svc.service.engine!.parts.feed.subscribers() > 0, "the watch");
    const leased = await fetchOne();
    expect(leased.job).toMatchObject({ id: job!.id, state: JobState.ACTIVE, payload: job!.payload });
    expect(timestampDate(leased.lease!.expiresAt!).getTime()).toBeGreaterThan(Date.now());
    const token = leased.lease!.token;
    const { leases } = await wrkA.workers.heartbeatJobs({ leaseTokens: [token] });
    expect(leases[0]).toMatchObject({ leaseToken: token, state: LeaseState.HELD });
    await wrkA.workers.reportProgress({ leaseToken: token, percent: 40, message: "page 2 of 5" });
    expect((await svcA.jobs.getJob({ id: job!.id })).job!.progress).toMatchObject({ percent: 40, message: "page 2 of 5" });
    const { job: done } = await wrkA.workers.completeJob({ leaseToken: token, result: { url: "https://files.example/inv.pdf" } });
    expect(done).toMatchObject({ state: JobState.COMPLETED, result: { url: "https://files.example/inv.pdf" } });
    const again = await wrkA.workers.completeJob({ leaseToken: token, result: { url: "https://files.example/inv.pdf" } });
    expect(again.job!.state).toBe(JobState.COMPLETED);
    const events = await watching;
    expect(events.map((e) => JobEventType[e.type])).toEqual(["SNAPSHOT", "STARTED", "PROGRESS", "COMPLETED"]);
    expect(events[2]!.job!.progress).toMatchObject({ percent: 40 });
    expect(violations(await failure(wrkA.workers.completeJob({ leaseToken: `${token.slice(0, -3)}abc` })))[0]).toMatchObject({
      field: "lease_token",
      reason: "INVALID_LEASE_TOKEN",
    });
    expect((await failure(wrkB.workers.completeJob({ leaseToken: token }))).code).toBe(Code.PermissionDenied);
  });

  it("lose the lease once the attempt is failed: the late completion is LEASE_LOST and changes nothing", async () => {
    const { job } = await svcA.jobs.addJob({ type: "invoice:render", payload: invoice(), options: { retryDelay: { seconds: 0n } } });
    const first = await fetchOne();
    const failed = await wrkA.workers.failJob({ leaseToken: first.lease!.token, error: "renderer crashed", retryable: true, reason: "RENDER_CRASH" });
    expect(failed.job).toMatchObject({ state: JobState.RETRY, lastError: { message: "renderer crashed", reason: "RENDER_CRASH", attempt: 1 } });
    const late = await failure(wrkA.workers.completeJob({ leaseToken: first.lease!.token, result: {} }));
    expect(late.code).toBe(Code.FailedPrecondition);
    expect(errorInfo(late)).toMatchObject({ reason: "LEASE_LOST", metadata: { job_id: job!.id } });
    expect((await failure(wrkA.workers.reportProgress({ leaseToken: first.lease!.token, percent: 1 }))).code).toBe(Code.FailedPrecondition);
    const { leases } = await wrkA.workers.heartbeatJobs({ leaseTokens: [first.lease!.token] });
    expect(leases[0]!.state).toBe(LeaseState.LOST);
    const second = await fetchOne();
    expect(second.job).toMatchObject({ id: job!.id, retryCount: 1 });
    const dead = await wrkA.workers.failJob({ leaseToken: second.lease!.token, error: "bad template", retryable: false });
    expect(dead.job).toMatchObject({ state: JobState.FAILED, lastError: { retryable: false } });
    await eventually(async () => (await svcA.jobs.getJob({ id: job!.id })).job!.deadLetterJobId !== "", "the dead letter");
    expect((await svcA.queues.listDeadLetters({ queue: "billing" })).jobs.map((j) => j.sourceJobId)).toContain(job!.id);
  });

  it("hear a cancel through the heartbeat, and the job ends cancelled", async () => {
    const { job } = await svcA.jobs.addJob({ type: "invoice:render", payload: invoice() });
    const leased = await fetchOne();
    await admin.jobs.cancelJob({ id: job!.id });
    const { leases } = await wrkA.workers.heartbeatJobs({ leaseTokens: [leased.lease!.token] });
    expect(leases[0]!.state).toBe(LeaseState.CANCEL_REQUESTED);
    const { job: ended } = await wrkA.workers.failJob({ leaseToken: leased.lease!.token, error: "stopped on request", retryable: true });
    expect(ended!.state).toBe(JobState.CANCELLED);
  });

  it("wait in FetchJobs until a job is added, and return it at once", async () => {
    const waited = wrkA.workers.fetchJobs({ types: ["invoice:render"], maxJobs: 5, wait: { seconds: 20n } });
    await eventually(async () => svc.service.engine!.parts.external.waiting() === 1, "the fetch to wait");
    const started = Date.now();
    const { job } = await svcA.jobs.addJob({ type: "invoice:render", payload: invoice() });
    const { jobs } = await waited;
    // Woken by the job, long before the wait ran out.
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(jobs.map((j) => j.job!.id)).toEqual([job!.id]);
    await wrkA.workers.completeJob({ leaseToken: jobs[0]!.lease!.token });
  });

  it("fetch nothing from a paused queue, and again after resume", async () => {
    await admin.queues.pauseQueue({ name: "billing" });
    try {
      const { job } = await svcA.jobs.addJob({ type: "invoice:render", payload: invoice() });
      expect((await wrkA.workers.fetchJobs({ types: ["invoice:render"], wait: { seconds: 1n } })).jobs).toEqual([]);
      const waited = wrkA.workers.fetchJobs({ types: ["invoice:render"], wait: { seconds: 20n } });
      await eventually(async () => svc.service.engine!.parts.external.waiting() === 1, "the fetch to wait");
      await admin.queues.resumeQueue({ name: "billing" });
      const { jobs } = await waited;
      expect(jobs.map((j) => j.job!.id)).toEqual([job!.id]);
      await wrkA.workers.completeJob({ leaseToken: jobs[0]!.lease!.token });
    } finally {
      await admin.queues.resumeQueue({ name: "billing" });
    }
  });

  it("cap waiting fetches per principal, and free a place as soon as its client leaves", async () => {
    const controllers = [new AbortController(), new AbortController()];
    const waits = controllers.map((c) =>
      wrkA.workers.fetchJobs({ types: ["invoice:render"], wait: { seconds: 30n } }, { signal: c.signal }).catch(() => undefined),
    );
    await eventually(async () => svc.service.engine!.parts.external.waiting() === 2, "two waiting fetches");
    // Operators see them as a gauge.
    const gauge = async () => /^queue_service_fetches_waiting(?:\{[^}]*\})? (\d+)$/m.exec(await (await fetch(`${svc.baseUrl}/metrics`)).text())?.[1];
    expect(await gauge()).toBe("2");
    const third = await failure(wrkA.workers.fetchJobs({ types: ["invoice:render"], wait: { seconds: 30n } }));
    expect(third.code).toBe(Code.ResourceExhausted);
    controllers[0]!.abort();
    await eventually(async () => svc.service.engine!.parts.external.waiting() === 1, "the place to be freed");
    controllers[1]!.abort();
    await Promise.all(waits);
    await eventually(async () => svc.service.engine!.parts.external.waiting() === 0, "no waiting fetch");
    expect(await gauge()).toBe("0");
  });
});

describe("another replica", () => {
  it("sees a new queue and job type at once", async () => {
    const other = await startTestService(db);
    try {
      const b = api(tokens.admin, () => other.baseUrl);
      await admin.queues.createQueue({ queue: { name: "crm" } });
      await admin.queues.registerJobType({ jobType: { name: "crm:sync", queue: "crm", payloadSchema: { type: "object" }, workers: ["wrk-a"] } });
      await eventually(async () => (await b.queues.listJobTypes({})).jobTypes.some((t) => t.name === "crm:sync"), "the other replica to see it", 2000);
      const { job } = await b.jobs.addJob({ type: "crm:sync", payload: { account: 1 } });
      const { jobs } = await wrkA.workers.fetchJobs({ types: ["crm:sync"], wait: { seconds: 5n } });
      expect(jobs.map((j) => j.job!.id)).toEqual([job!.id]);
      await wrkA.workers.completeJob({ leaseToken: jobs[0]!.lease!.token, result: { synced: true } });
      expect((await b.jobs.getJob({ id: job!.id })).job!.state).toBe(JobState.COMPLETED);
    } finally {
      await other.stop();
    }
  });
});
