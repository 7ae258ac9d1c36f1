/**
 * The money queue on the sandbox provider, through the public API: charges, refunds and mints happen
 * once (business keys in detail: money-business-keys.test.ts); the test cards rehearse the permanent,
 * retryable and flaky paths; failures are dead-lettered and listed; a running job can be cancelled
 * before its side effect.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Job, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { idempotencyKeyFor } from "../src/providers/money-providers.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure } from "./support/errors.js";
import { nftMint, payment, refund } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { waitForJob } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
let jobs: ReturnType<typeof client<typeof JobService>>;
let admin: ReturnType<typeof client<typeof JobService>>;
let queues: ReturnType<typeof client<typeof QueueService>>;

beforeAll(async () => {
  svc = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200" });
  jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
  admin = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
  queues = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

const finished = (j: Job) => [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED].includes(j.state);
const ledger = async (root: string) =>
  (await db.query(`SELECT kind, reference, amount FROM "${db.schema}".sandbox_ledger WHERE root_job_id = $1`, [root])).rows;
const fast = { retryDelay: { seconds: 1n }, retryBackoff: false };

describe("payment:process (sandbox)", () => {
  it("charges once and puts the charge in the result", async () => {
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment({ amount: 2500 }) });
    const done = await waitForJob(jobs, job!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.result).toMatchObject({ status: "succeeded", amount: 2500, currency: "USD", provider: "sandbox" });
    expect(done.retryCount).toBe(0);
    expect(await ledger(job!.rootJobId)).toEqual([{ kind: "charge", reference: done.result!.chargeId, amount: 2500 }]);
  });

  it("dead-letters a declined card at once, with its reason, and lists the dead letter", async () => {
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment({ paymentMethod: "tok_decline" }) });
    const done = await waitForJob(jobs, job!.id, (j) => finished(j) && j.deadLetterJobId !== "", "to be dead-lettered");
    expect(done.state).toBe(JobState.FAILED);
    expect(done.retryCount).toBe(0);
    expect(done.lastError).toMatchObject({ reason: "CARD_DECLINED", retryable: false, attempt: 1, message: "card declined by the issuer" });
    expect(await ledger(job!.rootJobId)).toEqual([]);
    const { jobs: dead } = await client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA }).listDeadLetters({ queue: "money" });
    const copy = dead.find((d) => d.id === done.deadLetterJobId);
    expect(copy).toMatchObject({ deadLetter: true, sourceJobId: job!.id, rootJobId: job!.rootJobId, state: JobState.FAILED });
    expect(copy!.lastError!.reason).toBe("CARD_DECLINED");
    const other = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceB });
    expect((await other.listDeadLetters({ queue: "money" })).jobs.find((d) => d.id === copy!.id)).toBeUndefined();
    // ListJobs reports the copy FAILED, and filters it as FAILED too.
    const list = (states: JobState[]) =>
      jobs.listJobs({ queue: "money", includeDeadLetters: true, states, pageSize: 1000 }).then((r) => r.jobs.map((j) => j.id));
    expect(await list([JobState.FAILED])).toEqual(expect.arrayContaining([job!.id, copy!.id]));
    expect(await list([JobState.CREATED])).not.toContain(copy!.id);
  });

  it("retries a gateway timeout with backoff, then dead-letters it", async () => {
    const { job } = await jobs.addJob({
      type: "payment:process",
      payload: payment({ paymentMethod: "tok_gateway_timeout" }),
      options: { retryLimit: 2, retryDelay: { seconds: 1n }, retryBackoff: true },
    });
    const done = await waitForJob(jobs, job!.id, (j) => finished(j) && j.deadLetterJobId !== "", "to be dead-lettered", 30_000);
    expect(done.retryCount).toBe(2);
    expect(done.lastError).toMatchObject({ reason: "GATEWAY_TIMEOUT", retryable: true, attempt: 3 });
    const { rows } = await db.query<{ type: string; at: Date }>(
      `SELECT type::text, occurred_at AS at FROM "${db.schema}".job_event WHERE job_id = $1 ORDER BY xid, seq`,
      [job!.id],
    );
    expect(rows.map((r) => r.type)).toEqual(["created", "started", "retry_scheduled", "started", "retry_scheduled", "started", "failed", "dead_lettered"]);
    const gap = (from: number) => rows[from + 1]!.at.getTime() - rows[from]!.at.getTime();
    // pg-boss's backoff: retryDelay * (2^n/2 + 2^n/2 * random) for the n-th retry: 1-2 s, then 2-4 s (plus polling).
    expect(gap(2)).toBeGreaterThanOrEqual(950);
    expect(gap(2)).toBeLessThan(2000 + 1500);
    expect(gap(4)).toBeGreaterThanOrEqual(1950);
    expect(gap(4)).toBeLessThan(4000 + 1500);
  });

  it("succeeds on the second attempt of a flaky gateway, charging once", async () => {
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment({ paymentMethod: "tok_flaky" }), options: fast });
    const done = await waitForJob(jobs, job!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.retryCount).toBe(1);
    expect(await ledger(job!.rootJobId)).toHaveLength(1);
  });
});

describe("refund:process and nft:mint (sandbox)", () => {
  it("refunds at most what was charged on the payment", async () => {
    const paymentId = `pay_refund_${Date.now()}`;
    const charge = await jobs.addJob({ type: "payment:process", payload: payment({ paymentId, amount: 1000, currency: "EUR" }) });
    await waitForJob(jobs, charge.job!.id, (j) => j.state === JobState.COMPLETED, "to be charged");
    const first = await jobs.addJob({ type: "refund:process", payload: refund({ paymentId, amount: 400, currency: "EUR" }) });
    expect((await waitForJob(jobs, first.job!.id, finished, "to finish")).state).toBe(JobState.COMPLETED);
    const tooMuch = await jobs.addJob({ type: "refund:process", payload: refund({ paymentId, amount: 700, currency: "EUR" }) });
    const refused = await waitForJob(jobs, tooMuch.job!.id, finished, "to finish");
    expect(refused.state).toBe(JobState.FAILED);
    expect(refused.lastError).toMatchObject({ reason: "REFUND_EXCEEDS_CHARGE", retryable: false });
    const rest = await jobs.addJob({ type: "refund:process", payload: refund({ paymentId, amount: 600, currency: "EUR" }) });
    expect((await waitForJob(jobs, rest.job!.id, finished, "to finish")).state).toBe(JobState.COMPLETED);
    const unknown = await jobs.addJob({ type: "refund:process", payload: refund({ paymentId: "pay_never_charged" }) });
    expect((await waitForJob(jobs, unknown.job!.id, finished, "to finish")).lastError!.reason).toBe("PAYMENT_NOT_FOUND");
  });

  it("mints once", async () => {
    const { job } = await jobs.addJob({ type: "nft:mint", payload: nftMint() });
    const done = await waitForJob(jobs, job!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.result).toMatchObject({ provider: "sandbox", recipientWallet: nftMint().recipientWallet });
    expect(String(done.result!.tokenId)).toMatch(/^tok_/);
    expect(await ledger(job!.rootJobId)).toHaveLength(1);
  });
});

describe("redrive", () => {
  it("puts dead letters back as new jobs of the same line", async () => {
    const { job } = await jobs.addJob({ type: "payment:process", payload: payment({ paymentMethod: "tok_decline" }) });
    const failed = await waitForJob(jobs, job!.id, (j) => j.deadLetterJobId !== "", "to be dead-lettered");
    const err = await failure(admin.retryJob({ id: job!.id }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain(failed.deadLetterJobId);
    const { redrivenCount, jobs: redriven } = await queues.redriveDeadLetters({ queue: "money", jobIds: [failed.deadLetterJobId] });
    expect(redrivenCount).toBe(1);
    expect(redriven[0]).toMatchObject({ rootJobId: job!.rootJobId, type: "payment:process", deadLetter: false });
    expect(redriven[0]!.id).not.toBe(job!.id);
    // Declined again: the new job fails and is dead-lettered again, still one line, never charged.
    const again = await waitForJob(admin, redriven[0]!.id, (j) => j.deadLetterJobId !== "", "to be dead-lettered again");
    expect(again.lastError!.reason).toBe("CARD_DECLINED");
    expect(await ledger(job!.rootJobId)).toEqual([]);
    const missing = await failure(queues.redriveDeadLetters({ queue: "money", jobIds: [failed.deadLetterJobId] }));
    expect(missing.code).toBe(Code.NotFound);
    expect(
      (await failure(client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA }).redriveDeadLetters({ queue: "money", limit: 1 }))).code,
    ).toBe(Code.PermissionDenied);
  });

  it("completes a redriven job whose charge already happened, without charging again", async () => {
    const p = payment({ paymentMethod: "tok_gateway_timeout" });
    const { job } = await jobs.addJob({ type: "payment:process", payload: p, options: { retryLimit: 0 } });
    const failed = await waitForJob(jobs, job!.id, (j) => j.deadLetterJobId !== "", "to be dead-lettered");
    // The gateway charged after all (its answer was lost): the sandbox ledger has the payment's charge.
    await db.query(
      `INSERT INTO "${db.schema}".sandbox_ledger (idempotency_key, account, root_job_id, kind, reference, payment_id, amount, currency) VALUES ($1, 'svc-a', $2, 'charge', 'ch_late', $3, 1299, 'USD')`,
      [idempotencyKeyFor("charge", "svc-a", p.paymentId), job!.rootJobId, p.paymentId],
    );
    const {
      jobs: [redriven],
    } = await queues.redriveDeadLetters({ queue: "money", jobIds: [failed.deadLetterJobId] });
    const done = await waitForJob(jobs, redriven!.id, finished, "to finish");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.result).toMatchObject({ chargeId: "ch_late", replayed: true });
    expect(await ledger(job!.rootJobId)).toHaveLength(1);
  });
});
