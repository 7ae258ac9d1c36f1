/**
 * JobService over real clients: AddJob for every job type with options and validation, idempotency
 * keys (including a 50-way race), atomic AddJobs, GetJob and ListJobs with ownership, filters and
 * signed page tokens.
 */
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { client, protocolMatrix } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, errorInfo, failure, violations } from "./support/errors.js";
import { bearerMetadata, grpcJsClient, unary } from "./support/grpc-js.js";
import { email, payment, validRequests } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

const db = testDatabase();
let svc: TestService;
let a: ReturnType<typeof client<typeof JobService>>;
let b: ReturnType<typeof client<typeof JobService>>;
let admin: ReturnType<typeof client<typeof JobService>>;

beforeAll(async () => {
  svc = await startTestService(db);
  a = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
  b = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceB });
  admin = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

const jobCount = async () => Number((await db.query(`SELECT count(*)::int AS n FROM "${db.bossSchema}".job`)).rows[0]!.n);

describe("AddJob", () => {
  it.each(validRequests())("adds a $type job to its queue with the queue's policy", async (request) => {
    const { job, deduplicated } = await a.addJob(request);
    expect(deduplicated).toBe(false);
    expect(job!.type).toBe(request.type);
    expect(job!.state).toBe(JobState.CREATED);
    expect(job!.payload).toEqual(request.payload);
    expect(job!.createdBy).toBe("svc-a");
    expect(job!.rootJobId).toBe(job!.id);
    expect(job!.retryCount).toBe(0);
    const expectedQueue = {
      "payment:process": "money",
      "refund:process": "money",
      "nft:mint": "money",
      "email:send": "communication",
      "analytics:aggregate": "background",
    }[request.type];
    expect(job!.queue).toBe(expectedQueue);
    if (request.type === "payment:process") {
      expect(job!.retryLimit).toBe(3);
      expect(Number(job!.retryDelay!.seconds)).toBe(5);
      expect(job!.retryBackoff).toBe(true);
      expect(Number(job!.expireIn!.seconds)).toBe(3600);
    }
  });

  it("applies options within the queue's bounds", async () => {
    const startAfter = new Date(Date.now() + 3_600_000);
    const { job } = await a.addJob({
      type: "payment:process",
      payload: payment(),
      options: {
        priority: 7,
        retryLimit: 5,
        retryDelay: { seconds: 30n },
        retryBackoff: false,
        expireIn: { seconds: 120n },
        schedule: { case: "startAfter", value: timestampFromDate(startAfter) },
      },
    });
    expect(job!.priority).toBe(7);
    expect(job!.retryLimit).toBe(5);
    expect(Number(job!.retryDelay!.seconds)).toBe(30);
    expect(job!.retryBackoff).toBe(false);
    expect(Number(job!.expireIn!.seconds)).toBe(120);
    expect(timestampDate(job!.startAfter!).getTime()).toBe(startAfter.getTime());
    const delayed = await a.addJob({ type: "email:send", payload: email(), options: { schedule: { case: "delay", value: { seconds: 600n } } } });
    const delayMs = timestampDate(delayed.job!.startAfter!).getTime() - timestampDate(delayed.job!.createdAt!).getTime();
    expect(delayMs).toBeGreaterThanOrEqual(599_000);
    expect(delayMs).toBeLessThanOrEqual(601_000);
  });

  it.each([
    ["an unknown type", { type: "payment:refund", payload: payment() }, "type", "UNKNOWN_JOB_TYPE"],
    ["no type", { type: "", payload: payment() }, "type", "REQUIRED"],
    ["no payload", { type: "payment:process" }, "payload", "REQUIRED"],
    ["an unknown payload key", { type: "payment:process", payload: payment({ tip: 5 }) }, "payload.tip", "UNKNOWN_FIELD"],
    ["a missing payload field", { type: "payment:process", payload: (({ orderId: _o, ...rest }) => rest)(payment()) }, "payload.orderId", "REQUIRED"],
    ["a negative amount", { type: "payment:process", payload: payment({ amount: -1 }) }, "payload.amount", "TOO_SMALL"],
    ["a fractional amount", { type: "payment:process", payload: payment({ amount: 10.5 }) }, "payload.amount", "INVALID_TYPE"],
    ["a lower-case currency", { type: "payment:process", payload: payment({ currency: "usd" }) }, "payload.currency", "INVALID_FORMAT"],
    ["an unknown currency", { type: "payment:process", payload: payment({ currency: "XYZ" }) }, "payload.currency", "INVALID_VALUE"],
    [
      "a bad wallet",
      { type: "nft:mint", payload: { ticketId: "t", orderId: "o", recipientWallet: "0x12", metadataUri: "https://x.example/m.json" } },
      "payload.recipientWallet",
      "INVALID_FORMAT",
    ],
    [
      "an http metadata URI",
      { type: "nft:mint", payload: { ticketId: "t", orderId: "o", recipientWallet: `0x${"a".repeat(40)}`, metadataUri: "http://x.example/m.json" } },
      "payload.metadataUri",
      "INVALID_VALUE",
    ],
    ["too many recipients", { type: "email:send", payload: email({ to: Array.from({ length: 51 }, (_, i) => `u${i}@example.com`) }) }, "payload.to", "TOO_BIG"],
    ["a bad recipient", { type: "email:send", payload: email({ to: ["ok@example.com", "not-an-address"] }) }, "payload.to[1]", "INVALID_FORMAT"],
    ["a numeric recipient", { type: "email:send", payload: email({ to: 5 }) }, "payload.to", "INVALID_VALUE"],
    ["an email without a body", { type: "email:send", payload: { to: "a@example.com", subject: "s" } }, "payload.text", "INVALID_VALUE"],
    [
      "an analytics window backwards",
      { type: "analytics:aggregate", payload: { from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z" } },
      "payload.to",
      "INVALID_VALUE",
    ],
    ["a priority out of range", { type: "email:send", payload: email(), options: { priority: 1000 } }, "options.priority", "OUT_OF_RANGE"],
    [
      "a retry limit over the queue's bound",
      { type: "payment:process", payload: payment(), options: { retryLimit: 11 } },
      "options.retry_limit",
      "OUT_OF_RANGE",
    ],
    [
      "a fractional retry delay",
      { type: "payment:process", payload: payment(), options: { retryDelay: { seconds: 1n, nanos: 5 } } },
      "options.retry_delay",
      "INVALID_VALUE",
    ],
    [
      "an expiry over the queue's bound",
      { type: "payment:process", payload: payment(), options: { expireIn: { seconds: 7n * 3600n } } },
      "options.expire_in",
      "OUT_OF_RANGE",
    ],
    [
      "a start two years ahead",
      {
        type: "payment:process",
        payload: payment(),
        options: { schedule: { case: "startAfter" as const, value: timestampFromDate(new Date(Date.now() + 2 * 365 * 86400_000)) } },
      },
      "options.start_after",
      "OUT_OF_RANGE",
    ],
    [
      "an idempotency key with a newline",
      { type: "payment:process", payload: payment(), options: { idempotencyKey: "a\nb" } },
      "options.idempotency_key",
      "INVALID_FORMAT",
    ],
    [
      "a 201-character idempotency key",
      { type: "payment:process", payload: payment(), options: { idempotencyKey: "k".repeat(201) } },
      "options.idempotency_key",
      "INVALID_FORMAT",
    ],
  ])("rejects %s with a field violation, writing nothing", async (_name, request, field, reason) => {
    const before = await jobCount();
    const err = await failure(a.addJob(request as never));
    expect(err.code).toBe(Code.InvalidArgument);
    expect(violations(err)).toContainEqual(expect.objectContaining({ field, reason }));
    expect(err.rawMessage).toContain(field);
    expect(await jobCount()).toBe(before);
  });

  it("enforces the payload's size, depth and string limits", async () => {
    const deep: Record<string, unknown> = {};
    let node = deep;
    for (let i = 0; i < 40; i++) {
      const child: Record<string, unknown> = {};
      node.n = child;
      node = child;
    }
    const cases = [
      { payload: { blob: "x".repeat(300 * 1024) }, reason: "TOO_LARGE" },
      { payload: deep, reason: "TOO_DEEP" },
      { payload: { ...email(), text: "y".repeat(65 * 1024) }, reason: "TOO_LONG" },
    ];
    for (const c of cases) {
      const err = await failure(a.addJob({ type: "email:send", payload: c.payload as never }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(violations(err).map((v) => v.reason)).toContain(c.reason);
    }
  });
});

describe("idempotency keys", () => {
  it("return the original job for the same request, and ALREADY_EXISTS for a different one", async () => {
    const request = { type: "payment:process", payload: payment(), options: { idempotencyKey: "order-1-charge" } };
    const first = await a.addJob(request);
    const again = await a.addJob({ ...request, payload: { ...request.payload } });
    expect(again.deduplicated).toBe(true);
    expect(again.job!.id).toBe(first.job!.id);
    const err = await failure(a.addJob({ ...request, payload: { ...request.payload, amount: 1 } }));
    expect(err.code).toBe(Code.AlreadyExists);
    expect(errorInfo(err)).toMatchObject({ reason: "IDEMPOTENCY_KEY_REUSED", metadata: { job_id: first.job!.id } });
    const options = await failure(a.addJob({ ...request, options: { ...request.options, priority: 3 } }));
    expect(options.code).toBe(Code.AlreadyExists);
  });

  it("are scoped to the principal", async () => {
    const request = { type: "email:send", payload: email(), options: { idempotencyKey: "welcome-42" } };
    const mine = await a.addJob(request);
    const theirs = await b.addJob(request);
    expect(theirs.deduplicated).toBe(false);
    expect(theirs.job!.id).not.toBe(mine.job!.id);
  });

  it("give one job and 49 deduplicated answers to 50 concurrent identical requests", async () => {
    const request = { type: "payment:process", payload: payment(), options: { idempotencyKey: "race-1" } };
    const results = await Promise.all(Array.from({ length: 50 }, () => a.addJob(request)));
    const ids = new Set(results.map((r) => r.job!.id));
    expect(ids.size).toBe(1);
    expect(results.filter((r) => !r.deduplicated)).toHaveLength(1);
    expect(results.filter((r) => r.deduplicated)).toHaveLength(49);
    const { rows } = await db.query(`SELECT count(*)::int AS n FROM "${db.bossSchema}".job WHERE data ->> 'idempotencyKey' = 'race-1'`);
    expect(rows[0]!.n).toBe(1);
  });
});

describe("AddJobs", () => {
  it("adds a batch atomically, with per-entry deduplication, for admins only", async () => {
    await admin.addJob({ type: "email:send", payload: email(), options: { idempotencyKey: "batch-existing" } });
    const { results } = await admin.addJobs({
      jobs: [
        ...validRequests(),
        { type: "email:send", payload: email(), options: { idempotencyKey: "batch-existing" } },
        { type: "payment:process", payload: payment({ paymentId: "same" }), options: { idempotencyKey: "batch-twice" } },
        { type: "payment:process", payload: payment({ paymentId: "same" }), options: { idempotencyKey: "batch-twice" } },
      ],
    });
    expect(results).toHaveLength(8);
    expect(results.map((r) => r.deduplicated)).toEqual([false, false, false, false, false, true, false, true]);
    expect(results[7]!.job!.id).toBe(results[6]!.job!.id);
    expect((await failure(a.addJobs({ jobs: validRequests() }))).code).toBe(Code.PermissionDenied);
  });

  it("validates every entry first and names each by index; nothing is written", async () => {
    const before = await jobCount();
    const err = await failure(
      admin.addJobs({ jobs: [...validRequests(), { type: "payment:process", payload: payment({ amount: 0 }) }, { type: "nope", payload: {} }] }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
    const fields = violations(err).map((v) => v.field);
    expect(fields).toEqual(expect.arrayContaining(["jobs[5].payload.amount", "jobs[6].type"]));
    expect(await jobCount()).toBe(before);
  });

  it("writes nothing when one entry's idempotency key conflicts", async () => {
    await admin.addJob({ type: "email:send", payload: email({ subject: "one" }), options: { idempotencyKey: "batch-conflict" } });
    const before = await jobCount();
    const err = await failure(
      admin.addJobs({ jobs: [...validRequests(), { type: "email:send", payload: email({ subject: "two" }), options: { idempotencyKey: "batch-conflict" } }] }),
    );
    expect(err.code).toBe(Code.AlreadyExists);
    expect(err.rawMessage).toMatch(/^jobs\[5\]: /);
    expect(await jobCount()).toBe(before);
  });

  it("takes 1 to 1,000 jobs", async () => {
    expect((await failure(admin.addJobs({ jobs: [] }))).code).toBe(Code.InvalidArgument);
    const tooMany = Array.from({ length: 1001 }, () => ({ type: "analytics:aggregate", payload: {} }));
    expect(violations(await failure(admin.addJobs({ jobs: tooMany })))[0]).toMatchObject({ field: "jobs", reason: "OUT_OF_RANGE" });
    const { results } = await admin.addJobs({ jobs: tooMany.slice(0, 1000) });
    expect(results).toHaveLength(1000);
  });
});

describe("GetJob", () => {
  it("returns a principal's own job and hides everyone else's", async () => {
    const { job } = await a.addJob({ type: "payment:process", payload: payment() });
    expect((await a.getJob({ id: job!.id })).job).toEqual(job);
    expect((await admin.getJob({ id: job!.id })).job!.id).toBe(job!.id);
    expect((await failure(b.getJob({ id: job!.id }))).code).toBe(Code.NotFound);
    expect((await failure(a.getJob({ id: "7d8a9c4e-0000-4000-8000-000000000000" }))).code).toBe(Code.NotFound);
    const malformed = await failure(a.getJob({ id: "not-a-uuid" }));
    expect(malformed.code).toBe(Code.InvalidArgument);
    expect(violations(malformed)[0]).toMatchObject({ field: "id", reason: "INVALID_FORMAT" });
  });
});

describe("ListJobs", () => {
  it("pages newest first through a principal's own jobs with filters", async () => {
    const mine: string[] = [];
    for (let i = 0; i < 7; i++)
      mine.push(
        (
          await b.addJob({
            type: "nft:mint",
            payload: { ticketId: `t${i}`, orderId: "o", recipientWallet: `0x${"b".repeat(40)}`, metadataUri: "https://m.example/1" },
          })
        ).job!.id,
      );
    const since = timestampDate((await b.getJob({ id: mine[0]! })).job!.createdAt!);
    await a.addJob({
      type: "nft:mint",
      payload: { ticketId: "other", orderId: "o", recipientWallet: `0x${"c".repeat(40)}`, metadataUri: "https://m.example/1" },
    });
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await b.listJobs({ type: "nft:mint", createdAfter: timestampFromDate(since), pageSize: 3, pageToken });
      expect(page.jobs.length).toBeLessThanOrEqual(3);
      seen.push(...page.jobs.map((j) => j.id));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual([...mine].reverse());
    const byState = await b.listJobs({ queue: "money", states: [JobState.COMPLETED] });
    expect(byState.jobs).toEqual([]);
    const byKey = await a.listJobs({ idempotencyKey: "order-1-charge" });
    expect(byKey.jobs).toHaveLength(1);
    const everyone = await admin.listJobs({ type: "nft:mint", createdAfter: timestampFromDate(since), pageSize: 1000 });
    expect(everyone.jobs.length).toBe(8);
  });

  it("pages through jobs of several states, newest first, each once", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await admin.addJob({ type: "payment:process", payload: payment() })).job!.id);
    const since = timestampDate((await admin.getJob({ id: ids[0]! })).job!.createdAt!);
    const cancelled = ids.filter((_, i) => i % 2 === 1);
    for (const id of cancelled) await admin.cancelJob({ id });
    const list = async (states: JobState[]) => {
      const seen: string[] = [];
      let pageToken = "";
      do {
        const page = await admin.listJobs({ queue: "money", states, createdAfter: timestampFromDate(since), pageSize: 2, pageToken });
        seen.push(...page.jobs.map((j) => j.id));
        pageToken = page.nextPageToken;
      } while (pageToken);
      return seen;
    };
    expect(await list([JobState.CANCELLED])).toEqual([...cancelled].reverse());
    expect(await list([JobState.CREATED, JobState.CANCELLED])).toEqual([...ids].reverse());
    expect(await list([JobState.CREATED])).toEqual(ids.filter((id) => !cancelled.includes(id)).reverse());
  });

  it("refuses a tampered page token, one issued for other filters, and unknown names", async () => {
    const first = await admin.listJobs({ pageSize: 1 });
    const token = first.nextPageToken;
    expect(token).not.toBe("");
    const tampered = `${token.slice(0, -2)}${token.endsWith("A") ? "B" : "A"}A`;
    for (const bad of [tampered, "garbage", `${token}.x`]) {
      const err = await failure(admin.listJobs({ pageSize: 1, pageToken: bad }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(violations(err)[0]).toMatchObject({ field: "page_token", reason: "INVALID_PAGE_TOKEN" });
    }
    expect((await failure(admin.listJobs({ pageSize: 1, pageToken: token, queue: "money" }))).code).toBe(Code.InvalidArgument);
    expect((await failure(b.listJobs({ pageSize: 1, pageToken: token }))).code).toBe(Code.InvalidArgument);
    expect(violations(await failure(admin.listJobs({ queue: "nope" })))[0]).toMatchObject({ field: "queue", reason: "UNKNOWN_QUEUE" });
    expect(violations(await failure(admin.listJobs({ queue: "money", type: "email:send" })))[0]).toMatchObject({ field: "type" });
  });
});

describe("every protocol", () => {
  it.each(protocolMatrix)("adds, gets and lists over $protocol HTTP/$httpVersion", async ({ protocol, httpVersion }) => {
    const c = client(JobService, svc.baseUrl, { protocol, httpVersion, token: tokens.serviceA, binary: protocol !== "connect" });
    const { job } = await c.addJob({ type: "email:send", payload: email({ subject: `via ${protocol} ${httpVersion}` }) });
    expect((await c.getJob({ id: job!.id })).job!.payload).toEqual(job!.payload);
    const page = await c.listJobs({ type: "email:send", pageSize: 1 });
    expect(page.jobs[0]!.id).toBe(job!.id);
    const ops = client(JobService, svc.baseUrl, { protocol, httpVersion, token: tokens.admin, binary: protocol !== "connect" });
    expect((await ops.cancelJob({ id: job!.id })).job!.state).toBe(JobState.CANCELLED);
    expect((await ops.retryJob({ id: job!.id })).job!.state).toBe(JobState.CREATED);
    expect((await ops.addJobs({ jobs: [{ type: "analytics:aggregate", payload: {} }] })).results).toHaveLength(1);
  });

  it("speaks to a plain @grpc/grpc-js client (Struct as fields, Timestamp as seconds/nanos)", async () => {
    const c = grpcJsClient("JobService", `127.0.0.1:${svc.service.port}`);
    try {
      const md = bearerMetadata(tokens.serviceA);
      const payload = { fields: { to: { stringValue: "grace@example.com" }, subject: { stringValue: "grpc-js" }, text: { stringValue: "hello" } } };
      const added = await unary<{ job: { id: string; state: string; payload: { fields: Record<string, unknown> }; createdAt: { seconds: number } } }>(
        c,
        "addJob",
        { type: "email:send", payload },
        md,
      );
      expect(added.job.state).toBe("JOB_STATE_CREATED");
      expect(added.job.payload.fields.subject).toEqual({ stringValue: "grpc-js", kind: "stringValue" });
      expect(added.job.createdAt.seconds).toBeGreaterThan(1_700_000_000);
      const got = await unary<{ job: { id: string } }>(c, "getJob", { id: added.job.id }, md);
      expect(got.job.id).toBe(added.job.id);
      const err = await unary(c, "addJob", { type: "email:send", payload: { fields: {} } }, md).catch((e: { code: number; details: string }) => e);
      expect((err as { code: number }).code).toBe(Code.InvalidArgument);
    } finally {
      c.close();
    }
  });
});
