/**
 * RetryJob and CancelJob with exactly the state rules of the contract, the lineage fields of a failed
 * job and its dead letter copy, and discarding dead letters (PurgeDeadLetters) with a PURGED event.
 */

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { PgBoss } from "pg-boss";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobEventType, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { testBoss } from "./support/boss.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure, violations } from "./support/errors.js";
import { bossQueueOf, jobStates } from "./support/job-states.js";
import { payment } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
let boss: PgBoss;
let admin: ReturnType<typeof client<typeof JobService>>;
let states: ReturnType<typeof jobStates>;
const pay = () => ({ type: "payment:process", payload: payment() });

beforeAll(async () => {
  svc = await startTestService(db);
  boss = await testBoss(db);
  admin = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
  states = jobStates(admin, boss, db);
});
afterAll(async () => {
  await boss?.stop({ graceful: false, close: true });
  await svc?.stop();
  await db.drop();
});

describe("CancelJob", () => {
  it("cancels a waiting job at once", async () => {
    const job = await states.add(pay());
    const { job: cancelled } = await admin.cancelJob({ id: job.id });
    expect(cancelled!.state).toBe(JobState.CANCELLED);
    expect(cancelled!.completedAt).toBeDefined();
    const retrying = await states.retrying(pay());
    expect((await admin.cancelJob({ id: retrying.id })).job!.state).toBe(JobState.CANCELLED);
  });

  it("asks a running job to stop: cancel_requested, still ACTIVE, and a CANCEL_REQUESTED event", async () => {
    const job = await states.active(pay());
    const { job: requested } = await admin.cancelJob({ id: job.id });
    expect(requested!.state).toBe(JobState.ACTIVE);
    expect(requested!.cancelRequested).toBe(true);
    const again = await admin.cancelJob({ id: job.id });
    expect(again.job!.cancelRequested).toBe(true);
    const { rows } = await db.query(`SELECT type::text FROM "${db.schema}".job_event WHERE job_id = $1 ORDER BY xid, seq`, [job.id]);
    expect(rows.map((r) => r.type)).toEqual(["created", "started", "cancel_requested"]);
  });

  it("leaves a cancelled job as it is, and refuses finished ones", async () => {
    const job = await states.add(pay());
    await admin.cancelJob({ id: job.id });
    expect((await admin.cancelJob({ id: job.id })).job!.state).toBe(JobState.CANCELLED);
    const completed = await states.completed(pay());
    const err = await failure(admin.cancelJob({ id: completed.id }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toMatch(/COMPLETED/);
    const failed = await states.failed(pay());
    expect((await failure(admin.cancelJob({ id: failed.id }))).code).toBe(Code.FailedPrecondition);
    expect((await failure(admin.cancelJob({ id: "00000000-0000-4000-8000-000000000000" }))).code).toBe(Code.NotFound);
  });
});

describe("RetryJob", () => {
  it("runs a cancelled job again with the same root", async () => {
    const job = await states.add(pay());
    await admin.cancelJob({ id: job.id });
    const { job: retried } = await admin.retryJob({ id: job.id });
    expect(retried!.state).toBe(JobState.CREATED);
    expect(retried!.rootJobId).toBe(job.rootJobId);
    expect(retried!.completedAt).toBeUndefined();
  });

  it("refuses a failed job that has a dead letter copy, naming the copy", async () => {
    const job = await states.failed(pay());
    const { job: failed } = await admin.getJob({ id: job.id });
    expect(failed!.state).toBe(JobState.FAILED);
    expect(failed!.lastError).toMatchObject({ message: "card declined", reason: "CARD_DECLINED", retryable: false, attempt: 1 });
    expect(failed!.deadLetterJobId).not.toBe("");
    const err = await failure(admin.retryJob({ id: job.id }));
    expect(err.code).toBe(Code.FailedPrecondition);
    expect(err.rawMessage).toContain(failed!.deadLetterJobId);

    const { job: copy } = await admin.getJob({ id: failed!.deadLetterJobId });
    expect(copy).toMatchObject({
      deadLetter: true,
      sourceJobId: job.id,
      rootJobId: job.rootJobId,
      state: JobState.FAILED,
      type: "payment:process",
      queue: "money",
    });
    expect(copy!.lastError!.message).toBe("card declined");
    expect((await failure(admin.retryJob({ id: copy!.id }))).code).toBe(Code.FailedPrecondition);
  });

  it("runs a failed job again once its dead letter copy is gone", async () => {
    const job = await states.failed(pay());
    await db.query(`DELETE FROM "${db.bossSchema}".job WHERE name = $1 AND source_id = $2`, [`${bossQueueOf("payment:process")}/dead-letter`, job.id]);
    const { job: retried } = await admin.retryJob({ id: job.id });
    expect(retried!.state).toBe(JobState.RETRY);
    expect(retried!.retryLimit).toBeGreaterThan(retried!.retryCount);
  });

  it("refuses jobs that are waiting, running or completed", async () => {
    for (const job of [await states.active(pay()), await states.completed(pay()), await states.retrying(pay()), await states.add(pay())]) {
      const err = await failure(admin.retryJob({ id: job.id }));
      expect(err.code).toBe(Code.FailedPrecondition);
      expect(err.rawMessage).toMatch(/only FAILED or CANCELLED/);
    }
  });

  it("is for admins only", async () => {
    const svcA = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    expect((await failure(svcA.retryJob({ id: "00000000-0000-4000-8000-000000000000" }))).code).toBe(Code.PermissionDenied);
    expect((await failure(svcA.cancelJob({ id: "00000000-0000-4000-8000-000000000000" }))).code).toBe(Code.PermissionDenied);
  });
});

describe("PurgeDeadLetters", () => {
  const queues = () => client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
  const deadLetterOf = async (request = pay()) => (await admin.getJob({ id: (await states.failed(request)).id })).job!.deadLetterJobId;
  const listed = async () => (await queues().listDeadLetters({ queue: "money", pageSize: 1000 })).jobs.map((j) => j.id);

  it("discards the listed dead letters, each with a PURGED event, and nothing when one is not a dead letter of the queue", async () => {
    const [one, two] = [await deadLetterOf(), await deadLetterOf()];
    const seen: JobEventType[] = [];
    const stop = new AbortController();
    const watching = (async () => {
      for await (const { event } of admin.watchJobs({ queue: "money" }, { signal: stop.signal })) {
        if (event!.job!.id === one) seen.push(event!.type);
        if (event!.type === JobEventType.PURGED && event!.job!.id === one) break;
      }
    })().catch(() => {});
    // The watch is open once a change made now reaches it.
    const probe = await states.add(pay());
    await eventually(async () => (await db.query(`SELECT 1 FROM "${db.schema}".job_event WHERE job_id = $1`, [probe.id])).rows.length > 0, "the probe's event");
    const err = await failure(queues().purgeDeadLetters({ queue: "money", jobIds: [one!, probe.id] }));
    expect(err.code).toBe(Code.NotFound);
    expect(await listed()).toEqual(expect.arrayContaining([one, two]));
    expect((await queues().purgeDeadLetters({ queue: "money", jobIds: [one!] })).purgedCount).toBe(1);
    expect(await listed()).not.toContain(one);
    expect(await listed()).toContain(two);
    expect((await failure(admin.getJob({ id: one! }))).code).toBe(Code.NotFound);
    const { rows } = await db.query<{ type: string }>(`SELECT type::text FROM "${db.schema}".job_event WHERE job_id = $1 ORDER BY xid, seq`, [one]);
    // The copy's only event (its failure is recorded on the job it came from).
    expect(rows.map((r) => r.type)).toEqual(["purged"]);
    await Promise.race([watching, new Promise((r) => setTimeout(r, 5000))]);
    stop.abort();
    expect(seen).toContain(JobEventType.PURGED);
  });

  it("discards those dead-lettered before a time, and needs ids or a time", async () => {
    const [old, recent] = [await deadLetterOf(), await deadLetterOf()];
    await db.query(`UPDATE "${db.bossSchema}".job SET created_on = now() - interval '2 hours' WHERE id = $1`, [old]);
    const before = new Date(Date.now() - 60 * 60_000);
    const { purgedCount } = await queues().purgeDeadLetters({ queue: "money", before: timestampFromDate(before) });
    expect(purgedCount).toBeGreaterThanOrEqual(1);
    expect(await listed()).not.toContain(old);
    expect(await listed()).toContain(recent);
    expect(violations(await failure(queues().purgeDeadLetters({ queue: "money" })))[0]).toMatchObject({ field: "job_ids", reason: "REQUIRED" });
    expect(violations(await failure(queues().purgeDeadLetters({ queue: "money", jobIds: [recent!], before: timestampFromDate(before) })))[0]).toMatchObject({
      field: "before",
    });
    expect(violations(await failure(queues().redriveDeadLetters({ queue: "money" })))[0]).toMatchObject({ field: "job_ids", reason: "REQUIRED" });
    const svcA = client(QueueService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    expect((await failure(svcA.purgeDeadLetters({ queue: "money", jobIds: [recent!] }))).code).toBe(Code.PermissionDenied);
    expect(await listed()).toContain(recent);
  });
});
