/**
 * email:send against a real SMTP server: delivery with the right headers and body, a rejecting server
 * dead-letters the job, a deferring or down server retries it until it is delivered; the outbox
 * transport writes .eml files; and a service principal's sends per minute are capped.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { type Job, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure, violations } from "./support/errors.js";
import { email } from "./support/payloads.js";
import { freePort } from "./support/process.js";
import { AUTH_TOKENS, startTestService, type TestService, tokens } from "./support/service.js";
import { startSmtp, type TestSmtp } from "./support/smtp.js";
import { waitForJob } from "./support/wait.js";

const db = testDatabase();
let smtp: TestSmtp;
let svc: TestService;
let jobs: ReturnType<typeof client<typeof JobService>>;
const services: TestService[] = [];

beforeAll(async () => {
  smtp = await startSmtp();
  svc = await startTestService(db, {
    WORKERS_ENABLED: "true",
    WORKER_POLL_INTERVAL_MS: "200",
    EMAIL_TRANSPORT: "smtp",
    SMTP_URL: smtp.url,
    EMAIL_FROM: "Shop <shop@example.com>",
    EMAIL_RATE_LIMIT_PER_MINUTE: "0",
  });
  jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
});
afterAll(async () => {
  for (const s of services) await s.stop();
  await svc?.stop();
  await smtp?.close();
  await db.drop();
});

const finished = (j: Job) => [JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED].includes(j.state);
const fast = { retryDelay: { seconds: 1n }, retryBackoff: false };

describe("email:send over SMTP", () => {
  it("delivers with the right envelope, headers and body", async () => {
    const { job } = await jobs.addJob({
      type: "email:send",
      payload: email({
        to: ["ada@example.com", "grace@example.com"],
        subject: "Your receipt #42",
        text: "Thanks for your order.",
        html: "<p>Thanks for your order.</p>",
        replyTo: "help@example.com",
      }),
    });
    const done = await waitForJob(jobs, job!.id, finished, "to be sent");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.result).toMatchObject({ transport: "smtp", accepted: ["ada@example.com", "grace@example.com"], messageId: `<${job!.rootJobId}@example.com>` });
    const mail = smtp.received.find((m) => m.raw.includes(job!.id))!;
    expect(mail.from).toBe("shop@example.com");
    expect(mail.to).toEqual(["ada@example.com", "grace@example.com"]);
    expect(mail.raw).toMatch(/^Subject: Your receipt #42$/m);
    expect(mail.raw).toMatch(/^From: Shop <shop@example.com>$/m);
    expect(mail.raw).toMatch(/^Reply-To: help@example.com$/m);
    expect(mail.raw).toMatch(new RegExp(`^Message-ID: <${job!.rootJobId}@example.com>$`, "m"));
    expect(mail.raw).toMatch(new RegExp(`^X-Queue-Service-Job: ${job!.id}$`, "m"));
    expect(mail.raw).toContain("Thanks for your order.");
    expect(mail.raw).toContain("<p>Thanks for your order.</p>");
  });

  it("dead-letters a message the server rejects (5xx)", async () => {
    smtp.rejectRecipients(550);
    try {
      const { job } = await jobs.addJob({ type: "email:send", payload: email({ subject: "rejected" }), options: fast });
      const done = await waitForJob(jobs, job!.id, (j) => j.deadLetterJobId !== "", "to be dead-lettered");
      expect(done.retryCount).toBe(0);
      expect(done.lastError).toMatchObject({ reason: "SMTP_REJECTED", retryable: false });
      expect(done.lastError!.message).toContain("550");
    } finally {
      smtp.rejectRecipients(undefined);
    }
  });

  it("retries a deferral (4xx) and delivers", async () => {
    smtp.deferNext(1);
    const { job } = await jobs.addJob({ type: "email:send", payload: email({ subject: "deferred once" }), options: fast });
    const done = await waitForJob(jobs, job!.id, finished, "to be sent");
    expect(done.state).toBe(JobState.COMPLETED);
    expect(done.retryCount).toBe(1);
    expect(smtp.received.filter((m) => m.raw.includes(job!.id))).toHaveLength(1);
  });

  it("retries while the server is down and delivers once it is back", async () => {
    const port = await freePort();
    const down = await startTestService(db, {
      WORKERS_ENABLED: "true",
      WORKER_POLL_INTERVAL_MS: "200",
      EMAIL_TRANSPORT: "smtp",
      SMTP_URL: `smtp://127.0.0.1:${port}`,
      SMTP_TIMEOUT_MS: "2000",
    });
    await svc.stop(); // only the replica pointing at the down server works now
    const back = { server: undefined as TestSmtp | undefined };
    try {
      const c = client(JobService, down.baseUrl, { protocol: "grpc", token: tokens.serviceA });
      const { job } = await c.addJob({ type: "email:send", payload: email({ subject: "server down" }), options: { ...fast, retryLimit: 10 } });
      const retrying = await waitForJob(c, job!.id, (j) => j.state === JobState.RETRY, "to be retrying");
      expect(retrying.lastError).toMatchObject({ reason: "SMTP_UNREACHABLE", retryable: true });
      back.server = await startSmtp(port);
      const done = await waitForJob(c, job!.id, finished, "to be sent once the server is back");
      expect(done.state).toBe(JobState.COMPLETED);
      expect(back.server.received.filter((m) => m.raw.includes(job!.id))).toHaveLength(1);
    } finally {
      await down.stop();
      await back.server?.close();
    }
  });
});

describe("the outbox transport", () => {
  it("writes each message as an .eml file", async () => {
    // The only replica with workers now (the SMTP ones were stopped above).
    const outbox = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200", EMAIL_TRANSPORT: "outbox" });
    services.push(outbox);
    const c = client(JobService, outbox.baseUrl, { protocol: "grpc", token: tokens.serviceB });
    const { job } = await c.addJob({ type: "email:send", payload: email({ subject: "to the outbox" }) });
    const done = await waitForJob(c, job!.id, finished, "to be written");
    const file = join(outbox.config.dataDir, "outbox", `${job!.rootJobId}.eml`);
    expect(done.result).toMatchObject({ transport: "outbox", file });
    expect(existsSync(file)).toBe(true);
    expect(readFileSync(file, "utf8")).toMatch(/^Subject: to the outbox$/m);
  });
});

describe("the email rate limit per principal", () => {
  it("counts recipients: beyond the limit RESOURCE_EXHAUSTED with when to retry, a job over it alone INVALID_ARGUMENT", async () => {
    const token = "test-service-c-token-0123456789";
    const limited = await startTestService(db, { EMAIL_RATE_LIMIT_PER_MINUTE: "3", AUTH_TOKENS: `${AUTH_TOKENS},svc-c:service:${token}` });
    services.push(limited);
    const c = client(JobService, limited.baseUrl, { protocol: "grpc", token });
    const adminClient = client(JobService, limited.baseUrl, { protocol: "grpc", token: tokens.admin });
    // Two recipients and one: three of three.
    await c.addJob({
      type: "email:send",
      payload: email({ to: ["ada@example.com", "grace@example.com"], subject: "newsletter 0" }),
      options: { idempotencyKey: "n-0" },
    });
    await c.addJob({ type: "email:send", payload: email({ to: "alan@example.com", subject: "newsletter 1" }), options: { idempotencyKey: "n-1" } });
    // A repeated request with its idempotency key is not a new send.
    expect(
      (
        await c.addJob({
          type: "email:send",
          payload: email({ to: ["ada@example.com", "grace@example.com"], subject: "newsletter 0" }),
          options: { idempotencyKey: "n-0" },
        })
      ).deduplicated,
    ).toBe(true);
    const err = await failure(c.addJob({ type: "email:send", payload: email({ to: ["edsger@example.com"] }) }));
    expect(err.code).toBe(Code.ResourceExhausted);
    expect(err.rawMessage).toMatch(/svc-c may add at most 3 recipients of email:send per minute/);
    const retry = err.findDetails(RetryInfoSchema)[0];
    expect(Number(retry!.retryDelay!.seconds)).toBeGreaterThan(0);
    expect(Number(retry!.retryDelay!.seconds)).toBeLessThanOrEqual(60);
    // One job naming more recipients than the limit can never be accepted: the field is named.
    const tooMany = await failure(
      c.addJob({ type: "email:send", payload: email({ to: ["a@example.com", "b@example.com", "c@example.com", "d@example.com"] }) }),
    );
    expect(tooMany.code).toBe(Code.InvalidArgument);
    expect(violations(tooMany)[0]).toMatchObject({ field: "payload.to", reason: "QUOTA_EXCEEDED" });
    // Other job types and admins are not limited.
    await c.addJob({ type: "analytics:aggregate", payload: {} });
    await adminClient.addJob({ type: "email:send", payload: email({ to: ["a@example.com", "b@example.com", "c@example.com", "d@example.com"] }) });
  });
});
