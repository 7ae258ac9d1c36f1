/**
 * The money queue on the HTTP providers, against a gateway in the test that behaves like a real one
 * (idempotency keys honoured, failures on demand): 2xx completes with the gateway's answer, 4xx
 * dead-letters at once, 5xx and timeouts retry, a lost answer never charges twice, a redrive asks the
 * gateway first, and a cancel that arrives after the charge was sent leaves the job completed.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState, type Job } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { idempotencyKeyFor } from "../src/providers/money-providers.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { startFakeGateway, type FakeGateway } from "./support/fake-gateway.js";
import { nftMint, payment, refund } from "./support/payloads.js";
import { startTestService, tokens, type TestService } from "./support/service.js";
import { eventually, waitForJob } from "./support/wait.js";

const db = testDatabase();
let gateway: FakeGateway;
let svc: TestService;
let jobs: ReturnType<typeof client<typeof JobService>>;

beforeAll(async () => {
  gateway = await startFakeGateway();
  svc = await startTestService(db, {
    WORKERS_ENABLED: "true",
    WORKER_POLL_INTERVAL_MS: "200",
    PAYMENT_PROVIDER: "http",
    PAYMENT_GATEWAY_URL: gateway.url,
    MINT_PROVIDER: "http",
    MINT_SERVICE_URL: gateway.url,
    PROVIDER_TIMEOUT_MS: "500",
    MONEY_CONCURRENCY: "1",
  });
  jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
});
afterAll(async () => {
  await svc?.stop();
  await gateway?.close();
  await db.drop();
});

const finished = (j: Job) => [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED].includes(j.state);
const fast = { retryDelay: { seconds: 1n }, retryBackoff: false };
const effectsOf = (root: string) => gateway.effects.filter((e) => e.key.endsWith(root));

describe("HTTP payment gateway", () => {
  it("charges with an idempotency key from the job line and keeps the gateway's answer", async () => {
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment({ amount: 4200, paymentMethod: "pm_card_visa" }) });
    const done = await waitForJob(jobs, job!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    const [effect] = effectsOf(job!.rootJobId);
    expect(effect).toMatchObject({ kind: "charge", key: idempotencyKeyFor("charge", job!.rootJobId), body: { amount: 4200, currency: "USD", payment_method: "pm_card_visa" } });
    expect(done.result).toMatchObject({ id: effect!.id, status: "succeeded", amount: 4200 });
  });

  it("dead-letters a 4xx at once, without retrying", async () => {
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment({ paymentMethod: "pm_card_declined" }), options: fast });
    const done = await waitForJob(jobs, job!.id, (j) => j.deadLetterJobId !== "", "to be dead-lettered");
    expect(done.retryCount).toBe(0);
    expect(done.lastError).toMatchObject({ reason: "PROVIDER_REJECTED", retryable: false });
    expect(done.lastError!.message).toContain("402");
    expect(done.lastError!.message).toContain("Your card was declined.");
    expect(gateway.requests.filter((r) => r.key === idempotencyKeyFor("charge", job!.rootJobId))).toHaveLength(1);
  });

  it("retries a 5xx and then succeeds, charging once", async () => {
    gateway.failNext(2, 503);
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment(), options: fast });
    const done = await waitForJob(jobs, job!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.retryCount).toBe(2);
    expect(effectsOf(job!.rootJobId)).toHaveLength(1);
  });

  it("retries a timeout; the retry replays the charge the gateway already made", async () => {
    gateway.delayNext(1, 1500);
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment(), options: fast });
    const done = await waitForJob(jobs, job!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.retryCount).toBe(1);
    expect(effectsOf(job!.rootJobId)).toHaveLength(1);
    expect(done.result!.id).toBe(effectsOf(job!.rootJobId)[0]!.id);
  });

  it("refunds through the gateway", async () => {
    const { job } = await jobs.addJob({ type: "refund:process", payload: refund({ amount: 300 }) });
    expect((await waitForJob(jobs, job!.id, finished, "to finish")).state).toBe(JobState.COMPLETED);
    expect(effectsOf(job!.rootJobId)[0]).toMatchObject({ kind: "refund", body: { payment: "pay_1", amount: 300, currency: "EUR" } });
  });
});

describe("HTTP mint service", () => {
  it("mints once", async () => {
    const { job } = await jobs.addJob({ type: "nft:mint", payload: nftMint() });
    expect((await waitForJob(jobs, job!.id, finished, "to finish")).state).toBe(JobState.COMPLETED);
    expect(effectsOf(job!.rootJobId)).toMatchObject([{ kind: "mint", key: idempotencyKeyFor("mint", job!.rootJobId) }]);
  });
});

describe("dead letter and redrive", () => {
  it("brings a dead letter back and completes it without a second charge", async () => {
    // Every answer is lost after the charge: the job exhausts its retries and is dead-lettered, though
    // the gateway charged once.
    gateway.loseAnswerNext(1);
    gateway.failNext(0, 500);
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment(), options: { retryLimit: 0 } });
    const failed = await waitForJob(jobs, job!.id, (j) => j.deadLetterJobId !== "", "to be dead-lettered");
    expect(failed.lastError).toMatchObject({ reason: "PROVIDER_UNREACHABLE", retryable: true });
    expect(effectsOf(job!.rootJobId)).toHaveLength(1);
    const queues = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
    const { jobs: [redriven] } = await queues.redriveDeadLetters({ queue: "money", jobIds: [failed.deadLetterJobId] });
    const done = await waitForJob(jobs, redriven!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.result).toMatchObject({ id: effectsOf(job!.rootJobId)[0]!.id, replayed: true });
    expect(effectsOf(job!.rootJobId)).toHaveLength(1);
    // The redriven job asked first, and sent no second charge.
    expect(gateway.requests.filter((r) => r.path === "/v1/charges" && r.key === idempotencyKeyFor("charge", job!.rootJobId))).toHaveLength(1);
  });
});

describe("cancel after the side effect", () => {
  it("lets the job complete: a charge that happened is never hidden", async () => {
    gateway.delayNext(1, 400);
    const slowSvc = await startTestService(db, { WORKERS_ENABLED: "true", PAYMENT_PROVIDER: "http", PAYMENT_GATEWAY_URL: gateway.url, PROVIDER_TIMEOUT_MS: "5000" });
    try {
      await svc.stop(); // the slow replica takes this job
      const c = client(JobService, slowSvc.baseUrl, { protocol: "grpc", token: tokens.admin });
      const { job } = await c.addJob({ type: "payment:process", payload: payment() });
      await eventually(async () => effectsOf(job!.rootJobId).length === 1, "the gateway to take the charge");
      const { job: requested } = await c.cancelJob({ id: job!.id });
      expect(requested!.cancelRequested).toBe(true);
      const done = await waitForJob(c, job!.id, finished, "to finish");
      expect(done.state).toBe(JobState.COMPLETED);
      expect(done.cancelRequested).toBe(true);
      expect(done.result!.id).toBe(effectsOf(job!.rootJobId)[0]!.id);
    } finally {
      await slowSvc.stop();
    }
  });
});
