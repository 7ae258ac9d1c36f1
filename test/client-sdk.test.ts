/**
 * The TypeScript SDK (clients/ts) against a running service: typed adds over every protocol, from the
 * Node and the browser (fetch) entry points; idempotency keys and UNAVAILABLE retries that never add
 * a job twice; waitForJob with timeouts and aborts; watchJobs resuming from its cursor after the
 * replica it followed restarted.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from "vitest";
import type { z } from "zod";
import {
  type AnalyticsAggregatePayload,
  createQueueClient,
  type EmailPayload,
  fieldViolations,
  type JobEvent,
  type NftMintPayload,
  type PaymentPayload,
  type RefundPayload,
} from "../clients/ts/src/index.js";
import { createQueueClient as createWebClient } from "../clients/ts/src/web.js";
import { JobEventType, JobState, ParentFailurePolicy } from "../gen/jobs/v1/job_pb.js";
import type { analyticsPayload } from "../src/workers/background/analytics-aggregate.js";
import type { emailPayload } from "../src/workers/communication/email-send.js";
import type { nftMintPayload } from "../src/workers/money/nft-mint.js";
import type { paymentPayload } from "../src/workers/money/payment-process.js";
import type { refundPayload } from "../src/workers/money/refund-process.js";
import { testDatabase } from "./support/database.js";
import { Code, failure } from "./support/errors.js";
import { startLossyProxy } from "./support/h2-proxy.js";
import { payment } from "./support/payloads.js";
import { freePort, type ServiceProcess, startReplica } from "./support/process.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const db = testDatabase();
let service: TestService;
const processes: ServiceProcess[] = [];
beforeAll(async () => {
  service = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200" });
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await service?.stop();
  await db.drop();
});

const jobCount = async () => (await db.query(`SELECT count(*)::int AS n FROM "${db.bossSchema}".job`)).rows[0]!.n as number;

describe("payload types", () => {
  it("are the server's schemas' input types", () => {
    expectTypeOf<PaymentPayload>().toEqualTypeOf<z.input<typeof paymentPayload>>();
    expectTypeOf<RefundPayload>().toEqualTypeOf<z.input<typeof refundPayload>>();
    expectTypeOf<NftMintPayload>().toEqualTypeOf<z.input<typeof nftMintPayload>>();
    expectTypeOf<EmailPayload>().toEqualTypeOf<z.input<typeof emailPayload>>();
    expectTypeOf<AnalyticsAggregatePayload>().toEqualTypeOf<z.input<typeof analyticsPayload>>();
  });
});

describe("createQueueClient", () => {
  for (const protocol of ["grpc", "connect", "grpc-web"] as const) {
    it(`adds a payment over ${protocol} with an idempotency key of its own, and waits for it`, async () => {
      const client = createQueueClient({ baseUrl: service.baseUrl, token: tokens.serviceA, protocol });
      const { job, deduplicated } = await client.addPayment(payment());
      expect(deduplicated).toBe(false);
      expect(job.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
      expect(job.createdBy).toBe("svc-a");
      const done = await client.waitForJob(job.id, { timeoutMs: 20_000 });
      expect(done.state).toBe(JobState.COMPLETED);
      expect((await client.getJob(job.id)).state).toBe(JobState.COMPLETED);
      client.close();
    });
  }

  it("repeats an explicit idempotency key as one job", async () => {
    const client = createQueueClient({ baseUrl: service.baseUrl, token: tokens.serviceA });
    const p = payment();
    const first = await client.addPayment(p, { idempotencyKey: `sdk-${p.orderId}` });
    const second = await client.addPayment(p, { idempotencyKey: `sdk-${p.orderId}` });
    expect(second).toMatchObject({ deduplicated: true, job: { id: first.job.id } });
    client.close();
  });

  it("names every refund (refundId) unless the caller does, so that its retries refund once", async () => {
    const client = createQueueClient({ baseUrl: service.baseUrl, token: tokens.serviceA });
    const { job } = await client.addRefund({ paymentId: "pay_1", amount: 5, currency: "EUR" });
    expect(job.payload!.refundId).toMatch(/^[0-9a-f-]{36}$/);
    const own = await client.addRefund({ paymentId: "pay_1", amount: 5, currency: "EUR", refundId: "ret_1" });
    expect(own.job.payload!.refundId).toBe("ret_1");
    // Nothing was charged: both fail for good (and are dead-lettered) before the next test counts jobs.
    for (const id of [job.id, own.job.id]) expect((await client.waitForJob(id, { timeoutMs: 20_000 })).lastError!.reason).toBe("PAYMENT_NOT_FOUND");
    client.close();
  });

  it("reports invalid payloads with their field violations", async () => {
    const client = createQueueClient({ baseUrl: service.baseUrl, token: tokens.serviceA });
    const before = await jobCount();
    const err = await failure(client.addRefund({ paymentId: "pay_1", amount: -5, currency: "usd" }));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(
      fieldViolations(err)
        .map((v) => v.field)
        .sort(),
    ).toEqual(["payload.amount", "payload.currency"]);
    expect(await jobCount()).toBe(before);
    client.close();
  });

  it("sends job options in plain units", async () => {
    const client = createQueueClient({ baseUrl: service.baseUrl, token: tokens.admin });
    const startAfter = new Date(Date.now() + 3_600_000);
    const { job } = await client.addEmail(
      { to: "a@example.com", subject: "later", text: "hi" },
      { startAfter, priority: 5, retryLimit: 1, expireInMs: 30_000 },
    );
    expect(job.state).toBe(JobState.CREATED);
    expect(job.priority).toBe(5);
    expect(job.retryLimit).toBe(1);
    expect(Number(job.startAfter!.seconds)).toBe(Math.floor(startAfter.getTime() / 1000));
    // A job after it, run even if it fails, one at a time per customer.
    const { job: child } = await client.addEmail(
      { to: "a@example.com", subject: "after", text: "hi" },
      { dependsOn: [job.id], onParentFailure: "run", concurrencyKey: "customer-7" },
    );
    expect(child).toMatchObject({ state: JobState.WAITING, dependsOn: [job.id], onParentFailure: ParentFailurePolicy.RUN, concurrencyKey: "customer-7" });
    await client.jobs.cancelJob({ id: job.id });
    // The parent was cancelled: with "run", the child runs anyway.
    expect((await client.jobs.getJob({ id: child.id })).job!.state).not.toBe(JobState.WAITING);
    await client.jobs.cancelJob({ id: child.id }).catch(() => {});
    client.close();
  });
});

describe("the browser entry (Connect-Web over fetch)", () => {
  for (const protocol of ["connect", "grpc-web"] as const) {
    it(`adds a job and reads it over ${protocol}`, async () => {
      const client = createWebClient({ baseUrl: service.baseUrl, token: tokens.serviceB, protocol });
      const { job } = await client.addAnalyticsAggregate({ bucket: "minute" });
      expect(job.type).toBe("analytics:aggregate");
      expect((await client.getJob(job.id)).createdBy).toBe("svc-b");
      const err = await failure(client.getJob("00000000-0000-4000-8000-000000000000"));
      expect(err.code).toBe(Code.NotFound);
    });
  }
});

describe("retries", () => {
  it("retry an AddJob whose response was lost with the same key: one job, reported as deduplicated", async () => {
    const proxy = await startLossyProxy(service.baseUrl);
    try {
      const client = createQueueClient({ baseUrl: proxy.baseUrl, token: tokens.serviceA, retry: { initialDelayMs: 10 } });
      const before = await jobCount();
      proxy.loseNext("/jobs.v1.JobService/AddJob");
      const { job, deduplicated } = await client.addPayment(payment());
      expect(proxy.calls.map((c) => c.outcome)).toEqual(["lost", "forwarded"]);
      expect(deduplicated).toBe(true);
      expect(await jobCount()).toBe(before + 1);
      expect((await client.getJob(job.id)).id).toBe(job.id);
      client.close();
    } finally {
      await proxy.close();
    }
  });

  it("wait for a replica that is not up yet, and give up after maxAttempts", async () => {
    const port = await freePort();
    const client = createQueueClient({
      baseUrl: `http://127.0.0.1:${port}`,
      token: tokens.serviceA,
      retry: { initialDelayMs: 200, maxDelayMs: 1000, maxAttempts: 30 },
    });
    const call = client.queues.listQueues({});
    await new Promise((r) => setTimeout(r, 700));
    const late = await startTestService(db, { PORT: String(port) });
    try {
      expect((await call).queues.map((q) => q.name)).toContain("money");
    } finally {
      client.close();
      await late.stop();
    }
    const impatient = createQueueClient({ baseUrl: `http://127.0.0.1:${port}`, retry: { maxAttempts: 2, initialDelayMs: 10 } });
    expect((await failure(impatient.queues.listQueues({}))).code).toBe(Code.Unavailable);
  });

  it("never retry other errors", async () => {
    const proxy = await startLossyProxy(service.baseUrl);
    try {
      const client = createQueueClient({ baseUrl: proxy.baseUrl, token: "wrong-token-0123456789" });
      expect((await failure(client.queues.listQueues({}))).code).toBe(Code.Unauthenticated);
      expect(proxy.calls).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });
});

describe("waitForJob", () => {
  it("times out with DEADLINE_EXCEEDED, and stops when its signal aborts", async () => {
    const client = createQueueClient({ baseUrl: service.baseUrl, token: tokens.admin });
    const { job } = await client.addPayment(payment(), { delayMs: 3_600_000 });
    const started = Date.now();
    // Long enough for the watch's first message (the job as it is) to arrive on a loaded machine: with
    // 300 ms it once did not, under the whole suite, and the message could not name the state.
    const timedOut = await failure(client.waitForJob(job.id, { timeoutMs: 2000 }));
    expect(timedOut.code).toBe(Code.DeadlineExceeded);
    expect(timedOut.rawMessage).toMatch(/did not finish within 2000 ms; it is CREATED/);
    expect(Date.now() - started).toBeLessThan(5000);

    const controller = new AbortController();
    const waiting = client.waitForJob(job.id, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("the caller gave up")), 100);
    await expect(waiting).rejects.toThrow("the caller gave up");

    const cancelled = client.waitForJob(job.id);
    await client.jobs.cancelJob({ id: job.id });
    expect((await cancelled).state).toBe(JobState.CANCELLED);
    client.close();
  });

  it("fails at once for a job that does not exist", async () => {
    const client = createQueueClient({ baseUrl: service.baseUrl, token: tokens.admin });
    expect((await failure(client.waitForJob("00000000-0000-4000-8000-000000000000"))).code).toBe(Code.NotFound);
    client.close();
  });
});

describe("watchJobs", () => {
  it("resumes from its last cursor after the replica it followed restarted, missing nothing", async () => {
    const portA = await freePort();
    const startA = () => startReplica(db, processes, { PORT: String(portA) });
    let a = await startA();
    const client = createQueueClient({ baseUrl: a.baseUrl, token: tokens.admin, retry: { initialDelayMs: 100, maxDelayMs: 500 } });
    const worker = createQueueClient({ baseUrl: service.baseUrl, token: tokens.admin });
    const controller = new AbortController();
    const seen: JobEvent[] = [];
    const feed = (async () => {
      for await (const event of client.watchJobs({ queue: "money" }, { signal: controller.signal })) seen.push(event);
    })();
    await new Promise((r) => setTimeout(r, 500));

    const { job: first } = await client.addPayment(payment());
    await eventually(async () => seen.some((e) => e.job?.id === first.id && e.type === JobEventType.COMPLETED), "the first job's completion on the feed");

    expect((await a.stop("SIGTERM")).code).toBe(0);
    // While the followed replica is down, another one adds and runs a job.
    const { job: second } = await worker.addPayment(payment());
    expect((await worker.waitForJob(second.id, { timeoutMs: 20_000 })).state).toBe(JobState.COMPLETED);
    a = await startA();

    await eventually(
      async () => seen.some((e) => e.job?.id === second.id && e.type === JobEventType.COMPLETED),
      "the second job's completion after the restart",
      20_000,
    );
    controller.abort();
    await feed;
    const of = (id: string) => seen.filter((e) => e.job?.id === id).map((e) => JobEventType[e.type]);
    expect(of(first.id)).toEqual(["CREATED", "STARTED", "COMPLETED"]);
    expect(of(second.id)).toEqual(["CREATED", "STARTED", "COMPLETED"]);
    expect(new Set(seen.map((e) => e.cursor)).size).toBe(seen.length);
    client.close();
    worker.close();
    await a.stop("SIGTERM");
  }, 90_000);
});
