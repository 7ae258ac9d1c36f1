/**
 * Idempotency keys are remembered for the configured window and then free again; job events past
 * their retention are deleted, and the watermark records how far.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { idempotencyQueries } from "../src/engine/queries/idempotency-queries.js";
import { eventQueries } from "../src/engine/store/event-queries.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { email } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

const db = testDatabase();
let svc: TestService;
let pool: pg.Pool;

beforeAll(async () => {
  svc = await startTestService(db, { IDEMPOTENCY_WINDOW_SECONDS: "60" });
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
});
afterAll(async () => {
  await pool?.end();
  await svc?.stop();
  await db.drop();
});

describe("retention", () => {
  it("frees an idempotency key once its window has passed", async () => {
    const jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const first = await jobs.addJob({ type: "email:send", payload: email({ subject: "v1" }), options: { idempotencyKey: "monthly-report" } });
    await db.query(`UPDATE "${db.schema}".idempotency_key SET created_at = now() - interval '2 minutes' WHERE key = 'monthly-report'`);
    const second = await jobs.addJob({ type: "email:send", payload: email({ subject: "v2" }), options: { idempotencyKey: "monthly-report" } });
    expect(second.deduplicated).toBe(false);
    expect(second.job!.id).not.toBe(first.job!.id);
    const again = await jobs.addJob({ type: "email:send", payload: email({ subject: "v2" }), options: { idempotencyKey: "monthly-report" } });
    expect(again.job!.id).toBe(second.job!.id);

    await db.query(`UPDATE "${db.schema}".idempotency_key SET created_at = now() - interval '2 minutes'`);
    expect(await idempotencyQueries(db.schema).sweep(pool, 60, 1000)).toBeGreaterThan(0);
    expect((await db.query(`SELECT count(*)::int AS n FROM "${db.schema}".idempotency_key`)).rows[0]!.n).toBe(0);
  });

  it("deletes events past their retention and raises the watermark", async () => {
    const events = eventQueries(db.schema, db.bossSchema);
    await db.query(`UPDATE "${db.schema}".job_event SET occurred_at = now() - interval '4 days'`);
    const { rows } = await db.query(`SELECT xid::text AS xid, seq FROM "${db.schema}".job_event ORDER BY xid DESC, seq DESC LIMIT 1`);
    expect(await events.watermark(pool)).toBeUndefined();
    expect(await events.sweep(pool, 3 * 86400, 1000)).toBeGreaterThan(0);
    expect(await events.watermark(pool)).toEqual({ xid: rows[0]!.xid, seq: Number(rows[0]!.seq) });
    expect((await db.query(`SELECT count(*)::int AS n FROM "${db.schema}".job_event`)).rows[0]!.n).toBe(0);
  });
});
