/**
 * QueueService on one replica: queues with policy and stats, stats exact right after every change,
 * pause and resume (idempotent, enforced by the database for any fetcher), and rate limit CRUD.
 */
import { durationFromMs, timestampDate } from "@bufbuild/protobuf/wkt";
import type { PgBoss } from "pg-boss";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { MonitoringService, RateLimitScope } from "../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService, type QueueStats } from "../gen/jobs/v1/queue_service_pb.js";
import { testBoss } from "./support/boss.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure, violations } from "./support/errors.js";
import { bossQueueOf, jobStates } from "./support/job-states.js";
import { nftMint, payment } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
let boss: PgBoss;
let admin: ReturnType<typeof client<typeof JobService>>;
let queues: ReturnType<typeof client<typeof QueueService>>;
let monitoring: ReturnType<typeof client<typeof MonitoringService>>;
let states: ReturnType<typeof jobStates>;

beforeAll(async () => {
  svc = await startTestService(db);
  boss = await testBoss(db);
  admin = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
  queues = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
  monitoring = client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
  states = jobStates(admin, boss, db);
});
afterAll(async () => {
  await boss?.stop({ graceful: false, close: true });
  await svc?.stop();
  await db.drop();
});

const nft = () => ({ type: "nft:mint", payload: nftMint() });
const typeStats = (s: QueueStats, type: string) => s.jobTypes.find((t) => t.type === type)!;
const stats = async (type = "nft:mint") => {
  const { stats: s } = await queues.getQueueStats({ name: "money" });
  const t = typeStats(s!, type);
  return {
    queued: Number(t.queued),
    delayed: Number(t.delayed),
    active: Number(t.active),
    retrying: Number(t.retrying),
    deadLettered: Number(t.deadLettered),
    completed: Number(t.completed),
    failed: Number(t.failed),
    cancelled: Number(t.cancelled),
  };
};

describe("ListQueues", () => {
  it("lists every queue with its job types, policy, pause and stats", async () => {
    const svcA = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const { queues: list, nextPageToken } = await svcA.listQueues({});
    expect(nextPageToken).toBe("");
    expect(list.map((q) => q.name)).toEqual(["background", "communication", "money"]);
    const money = list.find((q) => q.name === "money")!;
    expect(money.jobTypes).toEqual(["payment:process", "refund:process", "nft:mint"]);
    expect(money.paused).toBe(false);
    expect(money.policy).toMatchObject({ retryLimit: 3, retryBackoff: true });
    expect(Number(money.policy!.retryDelay!.seconds)).toBe(5);
    expect(Number(money.policy!.expireIn!.seconds)).toBe(3600);
    expect(money.policy!.deadLetterQueue).toContain("money/payment.process/dead-letter");
    expect(money.stats!.jobTypes).toHaveLength(3);
    const first = await svcA.listQueues({ pageSize: 2 });
    expect(first.queues.map((q) => q.name)).toEqual(["background", "communication"]);
    const second = await svcA.listQueues({ pageSize: 2, pageToken: first.nextPageToken });
    expect(second.queues.map((q) => q.name)).toEqual(["money"]);
    expect(second.nextPageToken).toBe("");
  });
});

describe("GetQueueStats", () => {
  it("is exact right after adds, starts, completions, failures and cancellations", async () => {
    expect(await stats()).toEqual({ queued: 0, delayed: 0, active: 0, retrying: 0, deadLettered: 0, completed: 0, failed: 0, cancelled: 0 });
    await states.add(nft());
    await states.add(nft());
    await states.add({ ...nft(), options: { schedule: { case: "delay", value: { seconds: 3600n } } } });
    expect(await stats()).toMatchObject({ queued: 2, delayed: 1, active: 0 });
    const running = await states.active(nft());
    expect(await stats()).toMatchObject({ queued: 2, delayed: 1, active: 1 });
    await boss.complete(bossQueueOf("nft:mint"), { id: running.id, retryCount: 0 }, { ok: true });
    expect(await stats()).toMatchObject({ active: 0, completed: 1 });
    await states.retrying(nft());
    expect(await stats()).toMatchObject({ retrying: 1 });
    await states.failed(nft());
    expect(await stats()).toMatchObject({ failed: 1, deadLettered: 1 });
    const waiting = await states.add(nft());
    await admin.cancelJob({ id: waiting.id });
    expect(await stats()).toEqual({ queued: 2, delayed: 1, active: 0, retrying: 1, deadLettered: 1, completed: 1, failed: 1, cancelled: 1 });
    const { stats: s } = await queues.getQueueStats({ name: "money", window: { seconds: 60n } });
    expect(Number(s!.window!.seconds)).toBe(60);
    expect(Number(s!.queued)).toBeGreaterThanOrEqual(2);
    expect(Number(s!.oldestQueuedAge!.seconds) * 1000 + s!.oldestQueuedAge!.nanos / 1e6).toBeGreaterThan(0);
  });

  it("keeps counts that agree with a count of the jobs themselves, before and after they are folded", async () => {
    // A mixed workload on another job type: waiting, delayed (beyond this minute and within it),
    // running, retrying, completed, failed and dead-lettered, cancelled, purged and redriven.
    const type = "refund:process";
    const req = () => ({ type, payload: { paymentId: "p", amount: 1, currency: "EUR" } });
    const delay = (ms: number) => ({ ...req(), options: { schedule: { case: "delay" as const, value: durationFromMs(ms) } } });
    for (let i = 0; i < 3; i++) await states.add(req());
    for (let i = 0; i < 2; i++) await states.add(delay(3_600_000));
    const soon = await states.add(delay(1500));
    await states.active(req());
    await states.retrying(req());
    await states.completed(req());
    const failed = await states.failed(req());
    await states.failed(req());
    await admin.cancelJob({ id: (await states.add(req())).id });
    const dead = (await admin.getJob({ id: failed.id })).job!.deadLetterJobId;
    await queues.purgeDeadLetters({ queue: "money", jobIds: [dead] });
    // The jobs' own count at the instant the stats were captured (no worker runs here: only the clock
    // moves them, from delayed to due).
    const truth = async (at: Date) => {
      const { rows } = await db.query<{ queued: number; delayed: number; active: number; retrying: number; dead: number }>(
        `SELECT count(*) FILTER (WHERE name = $1 AND state IN ('created', 'retry') AND start_after <= $2)::int AS queued,
                count(*) FILTER (WHERE name = $1 AND state = 'created' AND start_after > $2)::int AS delayed,
                count(*) FILTER (WHERE name = $1 AND state = 'active')::int AS active,
                count(*) FILTER (WHERE name = $1 AND state = 'retry' AND start_after > $2)::int AS retrying,
                count(*) FILTER (WHERE name = $1 || '/dead-letter' AND state < 'active')::int AS dead
         FROM "${db.bossSchema}".job`,
        [bossQueueOf(type), at],
      );
      return rows[0]!;
    };
    const counted = async () => {
      const { stats: s } = await queues.getQueueStats({ name: "money" });
      const t = typeStats(s!, type);
      return {
        at: timestampDate(s!.capturedAt!),
        counts: { queued: Number(t.queued), delayed: Number(t.delayed), active: Number(t.active), retrying: Number(t.retrying), dead: Number(t.deadLettered) },
      };
    };
    const agree = async () => {
      const { at, counts } = await counted();
      expect(counts).toEqual(await truth(at));
      return { at, counts };
    };
    const first = await agree();
    expect(first.counts).toMatchObject({ active: 1, dead: 1 });
    expect(first.counts.delayed).toBeGreaterThanOrEqual(2);
    // The job due in 1.5 s moves from delayed to queued, by the clock alone.
    const {
      rows: [due],
    } = await db.query<{ start_after: Date }>(`SELECT start_after FROM "${db.bossSchema}".job WHERE id = $1`, [soon.id]);
    await eventually(async () => (await counted()).at > due!.start_after, "the delayed job to come due");
    expect((await agree()).counts.delayed).toBe(2);
    // Folding moves the deltas into the counts and changes no answer.
    // (The service folds every second; this fold or its own, whichever holds the fold's lock.)
    await eventually(async () => {
      await db.query(`SELECT "${db.schema}".fold_job_counts()`);
      return (await db.query(`SELECT count(*)::int AS n FROM "${db.schema}".job_count_delta`)).rows[0]!.n === 0;
    }, "the deltas to be folded");
    await agree();
    expect(await stats(type)).toMatchObject({ completed: 1, failed: 2, cancelled: 1 });
  });

  it("answers NOT_FOUND for an unknown queue and INVALID_ARGUMENT for a bad window", async () => {
    expect((await failure(queues.getQueueStats({ name: "payments" }))).code).toBe(Code.NotFound);
    const err = await failure(queues.getQueueStats({ name: "money", window: { seconds: 31n * 86400n } }));
    expect(violations(err)[0]).toMatchObject({ field: "window", reason: "OUT_OF_RANGE" });
  });
});

describe("PauseQueue and ResumeQueue", () => {
  it("pause and resume idempotently, and record who paused", async () => {
    const { queue } = await queues.pauseQueue({ name: "background" });
    expect(queue).toMatchObject({ name: "background", paused: true, pausedBy: "admin" });
    const again = await queues.pauseQueue({ name: "background" });
    expect(again.queue!.pausedAt).toEqual(queue!.pausedAt);
    expect((await queues.listQueues({})).queues.find((q) => q.name === "background")!.paused).toBe(true);
    expect((await queues.resumeQueue({ name: "background" })).queue!.paused).toBe(false);
    expect((await queues.resumeQueue({ name: "background" })).queue!.paused).toBe(false);
    expect(violations(await failure(queues.pauseQueue({ name: "nope" })))[0]).toMatchObject({ field: "name", reason: "UNKNOWN_QUEUE" });
    const svcA = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    expect((await failure(svcA.pauseQueue({ name: "money" }))).code).toBe(Code.PermissionDenied);
  });

  it("is enforced in the database: even a plain pg-boss fetch starts nothing of a paused queue", async () => {
    const job = await states.add({ type: "payment:process", payload: payment() });
    await queues.pauseQueue({ name: "money" });
    try {
      expect(await boss.fetch(bossQueueOf("payment:process"), { batchSize: 10 })).toEqual([]);
      expect((await admin.getJob({ id: job.id })).job!.state).toBe(1);
    } finally {
      await queues.resumeQueue({ name: "money" });
    }
    const fetched = await boss.fetch(bossQueueOf("payment:process"), { batchSize: 50 });
    expect(fetched.map((j) => j.id)).toContain(job.id);
  });
});

describe("rate limits", () => {
  it("are set, listed, replaced and deleted, with validation", async () => {
    const { rateLimit } = await monitoring.setRateLimit({
      rateLimit: { scope: RateLimitScope.JOB_TYPE, key: "email:send", limit: 10, interval: durationFromMs(1000) },
    });
    expect(rateLimit).toMatchObject({ scope: RateLimitScope.JOB_TYPE, key: "email:send", limit: 10, updatedBy: "admin" });
    await monitoring.setRateLimit({ rateLimit: { scope: RateLimitScope.QUEUE, key: "money", limit: 100, interval: durationFromMs(60_000) } });
    await monitoring.setRateLimit({ rateLimit: { scope: RateLimitScope.JOB_TYPE, key: "email:send", limit: 20, interval: durationFromMs(1000) } });
    const { rateLimits } = await client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA }).listRateLimits({});
    expect(rateLimits.map((r) => [r.key, r.limit])).toEqual([
      ["email:send", 20],
      ["money", 100],
    ]);
    await monitoring.deleteRateLimit({ scope: RateLimitScope.QUEUE, key: "money" });
    expect((await failure(monitoring.deleteRateLimit({ scope: RateLimitScope.QUEUE, key: "money" }))).code).toBe(Code.NotFound);
    const bad = await failure(
      monitoring.setRateLimit({ rateLimit: { scope: RateLimitScope.JOB_TYPE, key: "email:sent", limit: 0, interval: durationFromMs(100) } }),
    );
    expect(
      violations(bad)
        .map((v) => v.field)
        .sort(),
    ).toEqual(["rate_limit.interval", "rate_limit.key", "rate_limit.limit"]);
    expect((await failure(monitoring.setRateLimit({ rateLimit: { key: "x", limit: 1, interval: durationFromMs(1000) } }))).code).toBe(Code.InvalidArgument);
  });
});
