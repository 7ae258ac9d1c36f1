/**
 * Money moves once per business key and only for the principal it belongs to (sandbox provider),
 * through the public API with two service principals and an admin, counting the sandbox ledger's
 * rows: a payment is charged once however many jobs ask for it, one after another or at once, with
 * or without idempotency keys, after RetryJob and redrive; a repeat with other terms fails and
 * charges nothing; refunds are the payer's (or an admin's), once per refundId, never beyond the
 * charge, and no message shows another principal's amounts; a ticket is minted once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Job, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { idempotencyKeyFor, type MoneyKind } from "../src/providers/money-providers.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { nftMint, payment, refund } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { waitForJob } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
let slow: TestService;
let a: ReturnType<typeof client<typeof JobService>>;
let b: ReturnType<typeof client<typeof JobService>>;
let admin: ReturnType<typeof client<typeof JobService>>;

beforeAll(async () => {
  svc = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200" });
  a = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
  b = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceB });
  admin = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
});
afterAll(async () => {
  await slow?.stop();
  await svc?.stop();
  await db.drop();
});

const finished = (j: Job) =>
  [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED].includes(j.state) &&
  (j.state !== JobState.FAILED || !j.lastError?.retryable || j.deadLetterJobId !== "");
const fast = { retryDelay: { seconds: 1n }, retryBackoff: false };
const unique = (prefix: string) => `${prefix}_${Math.random().toString(36).slice(2, 10)}`;
/** The ledger's rows for a business key (the sandbox keys its ledger by the idempotency key it is sent). */
const ledger = async (kind: MoneyKind, principal: string, key: string) =>
  (
    await db.query<{ kind: string; amount: number | null; account: string; reference: string }>(
      `SELECT kind, amount, account, reference FROM "${db.schema}".sandbox_ledger WHERE idempotency_key = $1`,
      [idempotencyKeyFor(kind, principal, key)],
    )
  ).rows;
const refundsOf = async (chargeReference: string) =>
  (
    await db.query<{ amount: string }>(`SELECT amount FROM "${db.schema}".sandbox_ledger WHERE kind = 'refund' AND charge_reference = $1`, [chargeReference])
  ).rows.map((r) => Number(r.amount));
const run = async (c: typeof a, type: string, payload: Record<string, unknown>, options: Record<string, unknown> = fast) => {
  const { job } = await c.addJob({ type, payload: payload as never, options });
  return waitForJob(c, job!.id, finished, "to finish", 30_000);
};

describe("a payment is charged once per (principal, paymentId)", () => {
  it("whatever the number of jobs asking for it one after another, without idempotency keys", async () => {
    const p = payment({ paymentId: unique("pay"), amount: 1500 });
    const first = await run(a, "payment:process", p);
    const second = await run(a, "payment:process", p);
    const third = await run(a, "payment:process", p);
    expect([first.state, second.state, third.state]).toEqual([JobState.COMPLETED, JobState.COMPLETED, JobState.COMPLETED]);
    expect(first.result).toMatchObject({ status: "succeeded", amount: 1500, replayed: false });
    for (const repeat of [second, third]) {
      expect(repeat.result).toMatchObject({ chargeId: first.result!.chargeId, replayed: true, originalJobId: first.id });
    }
    expect(await ledger("charge", "svc-a", p.paymentId)).toHaveLength(1);
  });

  it("refuses a repeat with other terms, naming them, and charges nothing more", async () => {
    const p = payment({ paymentId: unique("pay"), amount: 1000 });
    expect((await run(a, "payment:process", p)).state).toBe(JobState.COMPLETED);
    const other = await run(a, "payment:process", { ...p, amount: 1200 });
    expect(other.state).toBe(JobState.FAILED);
    expect(other.lastError).toMatchObject({ reason: "PAYMENT_TERMS_CONFLICT", retryable: false });
    expect(other.lastError!.message).toContain("amount 1000, not 1200");
    const card = await run(a, "payment:process", { ...p, paymentMethod: "tok_mastercard" });
    expect(card.lastError).toMatchObject({ reason: "PAYMENT_TERMS_CONFLICT" });
    expect(await ledger("charge", "svc-a", p.paymentId)).toEqual([expect.objectContaining({ amount: 1000 })]);
  });

  it("keeps each principal's payments apart: the same paymentId of two principals is two payments", async () => {
    const paymentId = unique("pay");
    const [ofA, ofB] = await Promise.all([
      run(a, "payment:process", payment({ paymentId, amount: 700 })),
      run(b, "payment:process", payment({ paymentId, amount: 900 })),
    ]);
    expect([ofA.state, ofB.state]).toEqual([JobState.COMPLETED, JobState.COMPLETED]);
    expect(ofA.result!.chargeId).not.toBe(ofB.result!.chargeId);
    expect(await ledger("charge", "svc-a", paymentId)).toEqual([expect.objectContaining({ amount: 700, account: "svc-a" })]);
    expect(await ledger("charge", "svc-b", paymentId)).toEqual([expect.objectContaining({ amount: 900, account: "svc-b" })]);
  });

  it("never charges in parallel: five jobs at once while the provider is slow make one charge", async () => {
    slow = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200", SANDBOX_LATENCY_MS: "400" });
    const c = client(JobService, slow.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const p = payment({ paymentId: unique("pay") });
    const added = await Promise.all(Array.from({ length: 5 }, () => c.addJob({ type: "payment:process", payload: p, options: { ...fast, retryLimit: 10 } })));
    const done = await Promise.all(added.map(({ job }) => waitForJob(c, job!.id, finished, "to finish", 30_000)));
    expect(done.map((j) => j.state)).toEqual(Array(5).fill(JobState.COMPLETED));
    expect(new Set(done.map((j) => j.result!.chargeId)).size).toBe(1);
    expect(await ledger("charge", "svc-a", p.paymentId)).toHaveLength(1);
    await slow.stop();
  });

  it("is charged once after a cancel and RetryJob, and after a redrive", async () => {
    const p = payment({ paymentId: unique("pay") });
    const charged = await run(a, "payment:process", p);
    // A repeat that was cancelled while it waited (its queue paused), then retried by an admin: it
    // finds the charge.
    const queues = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
    await queues.pauseQueue({ name: "money" });
    const { job: waiting } = await a.addJob({ type: "payment:process", payload: p });
    expect((await admin.cancelJob({ id: waiting!.id })).job!.state).toBe(JobState.CANCELLED);
    const { job: retried } = await admin.retryJob({ id: waiting!.id });
    expect(retried!.state).toBe(JobState.CREATED);
    await queues.resumeQueue({ name: "money" });
    const done = await waitForJob(a, waiting!.id, finished, "to finish");
    expect(done.result).toMatchObject({ chargeId: charged.result!.chargeId, replayed: true, originalJobId: charged.id });
    // A declined payment is dead-lettered; its redrive asks again and charges nothing.
    const declined = payment({ paymentId: unique("pay"), paymentMethod: "tok_decline" });
    const failed = await run(a, "payment:process", declined);
    expect(failed.lastError!.reason).toBe("CARD_DECLINED");
    const {
      jobs: [redriven],
    } = await queues.redriveDeadLetters({ queue: "money", jobIds: [failed.deadLetterJobId] });
    expect((await waitForJob(a, redriven!.id, finished, "to finish")).lastError!.reason).toBe("CARD_DECLINED");
    expect(await ledger("charge", "svc-a", p.paymentId)).toHaveLength(1);
    expect(await ledger("charge", "svc-a", declined.paymentId)).toHaveLength(0);
  });
});

describe("refunds belong to the payer", () => {
  it("refuses another principal's refund as not found, with nobody's amounts in any message", async () => {
    const paymentId = unique("pay");
    const charged = await run(a, "payment:process", payment({ paymentId, amount: 1500, currency: "EUR", customerId: "cus_secret" }));
    const theft = await run(b, "refund:process", refund({ paymentId, amount: 1000, currency: "EUR" }));
    expect(theft.state).toBe(JobState.FAILED);
    expect(theft.lastError).toMatchObject({ reason: "PAYMENT_NOT_FOUND", retryable: false });
    expect(theft.lastError!.message).toBe(`payment ${paymentId} has no charge to refund`);
    // Too much from the thief is the same answer: nothing about the payer's charge shows.
    const greedy = await run(b, "refund:process", refund({ paymentId, amount: 1_000_000, currency: "EUR" }));
    expect(greedy.lastError!.message).toBe(`payment ${paymentId} has no charge to refund`);
    for (const j of [theft, greedy]) expect(JSON.stringify({ error: j.lastError?.message, result: j.result })).not.toMatch(/\b1500\b|cus_secret|svc-a/);
    expect(await refundsOf(String(charged.result!.chargeId))).toEqual([]);
  });

  it("lets the payer and an admin refund, never beyond the charge", async () => {
    const paymentId = unique("pay");
    const charged = await run(a, "payment:process", payment({ paymentId, amount: 1500, currency: "EUR" }));
    expect((await run(admin, "refund:process", refund({ paymentId, amount: 500, currency: "EUR" }))).state).toBe(JobState.COMPLETED);
    expect((await run(a, "refund:process", refund({ paymentId, amount: 1000, currency: "EUR" }))).state).toBe(JobState.COMPLETED);
    const over = await run(a, "refund:process", refund({ paymentId, amount: 1, currency: "EUR" }));
    expect(over.lastError).toMatchObject({ reason: "REFUND_EXCEEDS_CHARGE", retryable: false });
    expect(over.lastError!.message).toContain("(0 of 1500)");
    const currency = await run(a, "refund:process", refund({ paymentId, amount: 1, currency: "USD" }));
    expect(currency.lastError!.reason).toBe("CURRENCY_MISMATCH");
    expect((await refundsOf(String(charged.result!.chargeId))).sort()).toEqual([1000, 500]);
  });

  it("refunds once per refundId, and refuses the same refundId with another amount", async () => {
    const paymentId = unique("pay");
    const charged = await run(a, "payment:process", payment({ paymentId, amount: 1000, currency: "EUR" }));
    const r = refund({ paymentId, amount: 300, currency: "EUR", refundId: unique("rf") });
    const first = await run(a, "refund:process", r);
    const again = await run(a, "refund:process", r);
    expect(first.result).toMatchObject({ status: "succeeded", amount: 300 });
    expect(again.result).toMatchObject({ refundId: first.result!.refundId, replayed: true, originalJobId: first.id });
    const other = await run(a, "refund:process", { ...r, amount: 400 });
    expect(other.lastError).toMatchObject({ reason: "REFUND_TERMS_CONFLICT", retryable: false });
    expect(await refundsOf(String(charged.result!.chargeId))).toEqual([300]);
  });

  it("sums concurrent refunds under the charge: of five at once for more than is left, only what fits", async () => {
    const paymentId = unique("pay");
    const charged = await run(a, "payment:process", payment({ paymentId, amount: 1000, currency: "EUR" }));
    const done = await Promise.all(Array.from({ length: 5 }, () => run(a, "refund:process", refund({ paymentId, amount: 300, currency: "EUR" }))));
    expect(done.filter((j) => j.state === JobState.COMPLETED)).toHaveLength(3);
    expect(done.filter((j) => j.lastError?.reason === "REFUND_EXCEEDS_CHARGE")).toHaveLength(2);
    expect(await refundsOf(String(charged.result!.chargeId))).toEqual([300, 300, 300]);
  });
});

describe("a ticket is minted once per (principal, ticketId)", () => {
  it("replays a repeat (a wallet in any letter case is the same wallet) and refuses other terms", async () => {
    const m = nftMint({ ticketId: unique("tkt") });
    const first = await run(a, "nft:mint", m);
    const again = await run(a, "nft:mint", { ...m, recipientWallet: String(m.recipientWallet).toLowerCase() });
    expect(again.result).toMatchObject({ tokenId: first.result!.tokenId, replayed: true, originalJobId: first.id });
    const other = await run(a, "nft:mint", { ...m, recipientWallet: `0x${"1".repeat(40)}` });
    expect(other.lastError).toMatchObject({ reason: "MINT_TERMS_CONFLICT", retryable: false });
    expect(await ledger("mint", "svc-a", m.ticketId as string)).toHaveLength(1);
  });
});
