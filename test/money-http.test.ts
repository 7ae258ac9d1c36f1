/**
 * The money queue on the HTTP providers, against a gateway in the test that behaves like a real one
 * (idempotency keys honoured, the same key with other parameters refused, a key in use answered 409,
 * refunds checked against their charge, failures on demand): 2xx completes with the gateway's answer,
 * 4xx dead-letters at once, 5xx and timeouts retry, a lost answer never charges twice, a redrive asks
 * the gateway first, a payment repeated by other jobs is sent once, another principal's refund is
 * never sent, and a cancel that arrives after the charge was sent never makes the job CANCELLED.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Job, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { idempotencyKeyFor, type MoneyKind } from "../src/providers/money-providers.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { type FakeGateway, startFakeGateway } from "./support/fake-gateway.js";
import { nftMint, payment, refund } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually, waitForJob } from "./support/wait.js";

const db = testDatabase();
let gateway: FakeGateway;
let svc: TestService;
let jobs: ReturnType<typeof client<typeof JobService>>;
let a: ReturnType<typeof client<typeof JobService>>;
let b: ReturnType<typeof client<typeof JobService>>;

const httpProviders = (url: string) => ({
  PAYMENT_PROVIDER: "http",
  PAYMENT_GATEWAY_URL: url,
  MINT_PROVIDER: "http",
  MINT_SERVICE_URL: url,
  PROVIDER_ALLOW_HTTP: "true",
});

beforeAll(async () => {
  gateway = await startFakeGateway();
  svc = await startTestService(db, {
    WORKERS_ENABLED: "true",
    WORKER_POLL_INTERVAL_MS: "200",
    ...httpProviders(gateway.url),
    PROVIDER_TIMEOUT_MS: "500",
    MONEY_CONCURRENCY: "1",
  });
  jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
  a = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
  b = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceB });
});
afterAll(async () => {
  await svc?.stop();
  await gateway?.close();
  await db.drop();
});

const finished = (j: Job) => [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED].includes(j.state);
const fast = { retryDelay: { seconds: 1n }, retryBackoff: false };
const unique = (prefix: string) => `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
const keyOf = (kind: MoneyKind, principal: string, businessKey: string) => idempotencyKeyFor(kind, principal, businessKey);
const effectsOf = (key: string) => gateway.effects.filter((e) => e.key === key);
const posts = (path: string, key: string) => gateway.requests.filter((r) => r.method === "POST" && r.path === path && r.key === key);

describe("HTTP payment gateway", () => {
  it("charges with an idempotency key from the payment and keeps the gateway's answer", async () => {
    const p = payment({ amount: 4200, paymentMethod: "pm_card_visa" });
    const { job } = await jobs.addJob({ type: "payment:process", payload: p });
    const done = await waitForJob(jobs, job!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    const [effect] = effectsOf(keyOf("charge", "admin", p.paymentId));
    expect(effect).toMatchObject({ kind: "charge", body: { amount: 4200, currency: "USD", payment_method: "pm_card_visa" } });
    expect(done.result).toMatchObject({ id: effect!.id, status: "succeeded", amount: 4200 });
  });

  it("dead-letters a 4xx at once, without retrying", async () => {
    const p = payment({ paymentMethod: "pm_card_declined" });
    const { job } = await jobs.addJob({ type: "payment:process", payload: p, options: fast });
    const done = await waitForJob(jobs, job!.id, (j) => j.deadLetterJobId !== "", "to be dead-lettered");
    expect(done.retryCount).toBe(0);
    expect(done.lastError).toMatchObject({ reason: "PROVIDER_REJECTED", retryable: false });
    expect(done.lastError!.message).toContain("402");
    expect(done.lastError!.message).toContain("Your card was declined.");
    expect(posts("/v1/charges", keyOf("charge", "admin", p.paymentId))).toHaveLength(1);
  });

  it("retries a 5xx and then succeeds, charging once", async () => {
    gateway.failNext(2, 503);
    const p = payment();
    const { job } = await jobs.addJob({ type: "payment:process", payload: p, options: fast });
    const done = await waitForJob(jobs, job!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.retryCount).toBe(2);
    expect(effectsOf(keyOf("charge", "admin", p.paymentId))).toHaveLength(1);
  });

  it("retries a timeout; the retry finds the charge the gateway already made", async () => {
    // The gateway charges, then answers after 900 ms: the attempt gives up at 500 ms; its retry (1 s
    // later) asks the gateway before sending again.
    gateway.delayNext(1, 900);
    const p = payment();
    const { job } = await jobs.addJob({ type: "payment:process", payload: p, options: fast });
    const done = await waitForJob(jobs, job!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.retryCount).toBe(1);
    const key = keyOf("charge", "admin", p.paymentId);
    expect(effectsOf(key)).toHaveLength(1);
    expect(done.result!.id).toBe(effectsOf(key)[0]!.id);
    expect(posts("/v1/charges", key)).toHaveLength(1);
  });

  it("sends a payment repeated by other jobs once: the repeats complete with the first charge", async () => {
    const p = payment({ paymentId: unique("pay") });
    const first = await waitForJob(a, (await a.addJob({ type: "payment:process", payload: p })).job!.id, finished, "to finish");
    const second = await waitForJob(a, (await a.addJob({ type: "payment:process", payload: p })).job!.id, finished, "to finish");
    expect(second.state).toBe(JobState.COMPLETED);
    expect(second.result).toMatchObject({ id: first.result!.id, replayed: true, originalJobId: first.id });
    const other = await waitForJob(a, (await a.addJob({ type: "payment:process", payload: { ...p, amount: 1 } })).job!.id, finished, "to finish");
    expect(other.lastError).toMatchObject({ reason: "PAYMENT_TERMS_CONFLICT", retryable: false });
    const key = keyOf("charge", "svc-a", p.paymentId);
    expect(posts("/v1/charges", key)).toHaveLength(1);
    expect(effectsOf(key)).toHaveLength(1);
  });

  it("refunds the payer's charge through the gateway, naming it; another principal's refund is never sent", async () => {
    const p = payment({ paymentId: unique("pay"), amount: 800, currency: "EUR" });
    const charged = await waitForJob(a, (await a.addJob({ type: "payment:process", payload: p })).job!.id, finished, "to be charged");
    const r = { ...refund({ paymentId: p.paymentId, amount: 300, currency: "EUR" }), refundId: unique("rf") };
    const refunded = await waitForJob(a, (await a.addJob({ type: "refund:process", payload: r })).job!.id, finished, "to finish");
    expect(refunded.state).toBe(JobState.COMPLETED);
    expect(effectsOf(keyOf("refund", "svc-a", r.refundId))).toMatchObject([
      { kind: "refund", body: { charge: charged.result!.id, payment: p.paymentId, amount: 300, currency: "EUR" } },
    ]);
    const stolen = { ...r, refundId: unique("rf") };
    const theft = await waitForJob(b, (await b.addJob({ type: "refund:process", payload: stolen })).job!.id, finished, "to finish");
    expect(theft.lastError).toMatchObject({ reason: "PAYMENT_NOT_FOUND", retryable: false });
    expect(posts("/v1/refunds", keyOf("refund", "svc-b", stolen.refundId))).toEqual([]);
  });
});

describe("HTTP mint service", () => {
  it("mints once", async () => {
    const m = nftMint({ ticketId: unique("tkt") });
    const { job } = await jobs.addJob({ type: "nft:mint", payload: m });
    expect((await waitForJob(jobs, job!.id, finished, "to finish")).state).toBe(JobState.COMPLETED);
    expect(effectsOf(keyOf("mint", "admin", m.ticketId as string))).toMatchObject([{ kind: "mint" }]);
  });
});

describe("dead letter and redrive", () => {
  it("brings a dead letter back and completes it without a second charge", async () => {
    // The answer is lost after the charge: the job exhausts its retries and is dead-lettered, though
    // the gateway charged once.
    gateway.loseAnswerNext(1);
    const p = payment();
    const { job } = await jobs.addJob({ type: "payment:process", payload: p, options: { retryLimit: 0 } });
    const failed = await waitForJob(jobs, job!.id, (j) => j.deadLetterJobId !== "", "to be dead-lettered");
    expect(failed.lastError).toMatchObject({ reason: "PROVIDER_UNREACHABLE", retryable: true });
    const key = keyOf("charge", "admin", p.paymentId);
    expect(effectsOf(key)).toHaveLength(1);
    const queues = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
    const {
      jobs: [redriven],
    } = await queues.redriveDeadLetters({ queue: "money", jobIds: [failed.deadLetterJobId] });
    const done = await waitForJob(jobs, redriven!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.result).toMatchObject({ id: effectsOf(key)[0]!.id, replayed: true });
    expect(effectsOf(key)).toHaveLength(1);
    // The redriven job asked first, and sent no second charge.
    expect(posts("/v1/charges", key)).toHaveLength(1);
  });
});

describe("cancel after the charge was sent", () => {
  it("lets the job complete: a charge that happened is never hidden", async () => {
    gateway.delayNext(1, 400);
    const slowSvc = await startTestService(db, { WORKERS_ENABLED: "true", ...httpProviders(gateway.url), PROVIDER_TIMEOUT_MS: "5000" });
    try {
      await svc.stop(); // the slow replica takes the jobs from here on
      const c = client(JobService, slowSvc.baseUrl, { protocol: "grpc", token: tokens.admin });
      const p = payment();
      const { job } = await c.addJob({ type: "payment:process", payload: p });
      await eventually(async () => effectsOf(keyOf("charge", "admin", p.paymentId)).length === 1, "the gateway to take the charge");
      const { job: requested } = await c.cancelJob({ id: job!.id });
      expect(requested!.cancelRequested).toBe(true);
      const done = await waitForJob(c, job!.id, finished, "to finish");
      expect(done.state).toBe(JobState.COMPLETED);
      expect(done.cancelRequested).toBe(true);
      expect(done.result!.id).toBe(effectsOf(keyOf("charge", "admin", p.paymentId))[0]!.id);
    } finally {
      await slowSvc.stop();
    }
  });

  it("retries with the same key when the answer is lost after a cancel, never recording CANCELLED", async () => {
    // The gateway charges and takes 1.5 s to answer; the attempt gives up after 500 ms, with a cancel
    // requested while the request was out. The job must not end CANCELLED: it is retried with the
    // same key until the gateway's answer is known, and completes with the one charge.
    gateway.delayNext(1, 1500);
    const timingOut = await startTestService(db, {
      WORKERS_ENABLED: "true",
      WORKER_POLL_INTERVAL_MS: "200",
      ...httpProviders(gateway.url),
      PROVIDER_TIMEOUT_MS: "500",
    });
    try {
      const c = client(JobService, timingOut.baseUrl, { protocol: "grpc", token: tokens.admin });
      const p = payment();
      const key = keyOf("charge", "admin", p.paymentId);
      const { job } = await c.addJob({ type: "payment:process", payload: p, options: { ...fast, retryLimit: 5 } });
      await eventually(async () => posts("/v1/charges", key).length === 1, "the charge to be sent");
      await c.cancelJob({ id: job!.id });
      const done = await waitForJob(c, job!.id, finished, "to finish", 30_000);
      expect(done.state).toBe(JobState.COMPLETED);
      expect(done.result!.id).toBe(effectsOf(key)[0]!.id);
      expect(effectsOf(key)).toHaveLength(1);
      const { rows } = await db.query<{ type: string }>(`SELECT type::text FROM "${db.schema}".job_event WHERE job_id = $1 ORDER BY xid, seq`, [job!.id]);
      expect(rows.map((r) => r.type)).not.toContain("cancelled");
      expect(rows.map((r) => r.type)).toContain("retry_scheduled");
    } finally {
      await timingOut.stop();
    }
  });
});
