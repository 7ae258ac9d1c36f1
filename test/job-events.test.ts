/**
 * Every state change lands in the job event log, including the supervisor's expiries and the dead
 * letter copies pg-boss writes itself; and the log's cursor never skips an event that commits late.
 */
import pg from "pg";
import type { PgBoss } from "pg-boss";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { type EventPosition, type EventRow, eventQueries } from "../src/engine/store/event-queries.js";
import { testBoss } from "./support/boss.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { bossQueueOf, jobStates } from "./support/job-states.js";
import { payment } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
let boss: PgBoss;
let admin: ReturnType<typeof client<typeof JobService>>;
let states: ReturnType<typeof jobStates>;
let pool: pg.Pool;
const events = () => eventQueries(db.schema, db.bossSchema);
const pay = () => ({ type: "payment:process", payload: payment() });

beforeAll(async () => {
  svc = await startTestService(db);
  boss = await testBoss(db);
  admin = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
  states = jobStates(admin, boss, db);
  pool = new pg.Pool({ connectionString: db.url, max: 12 });
});
afterAll(async () => {
  await pool?.end();
  await boss?.stop({ graceful: false, close: true });
  await svc?.stop();
  await db.drop();
});

const eventsOf = async (jobId: string) =>
  (
    await db.query<{ type: string; state: string; previous_state: string | null; detail: Record<string, unknown> | null }>(
      `SELECT type::text, state, previous_state, detail FROM "${db.schema}".job_event WHERE job_id = $1 ORDER BY xid, seq`,
      [jobId],
    )
  ).rows;

describe("capture", () => {
  it("records added, started and completed", async () => {
    const job = await states.completed(pay());
    expect(await eventsOf(job.id)).toEqual([
      { type: "created", state: "created", previous_state: null, detail: null },
      { type: "started", state: "active", previous_state: "created", detail: null },
      { type: "completed", state: "completed", previous_state: "active", detail: null },
    ]);
  });

  it("records a failed attempt with a retry scheduled", async () => {
    const job = await states.retrying(pay());
    const log = await eventsOf(job.id);
    expect(log.map((e) => e.type)).toEqual(["created", "started", "retry_scheduled"]);
    expect(log[2]).toMatchObject({ state: "retry", previous_state: "active", detail: { message: "gateway timeout" } });
  });

  it("records a final failure and then the dead letter copy pg-boss made in the same statement", async () => {
    const job = await states.failed(pay());
    const log = await eventsOf(job.id);
    expect(log.map((e) => e.type)).toEqual(["created", "started", "failed", "dead_lettered"]);
    const copyId = log[3]!.detail!.deadLetterJobId as string;
    const { rows } = await db.query(`SELECT source_id FROM "${db.bossSchema}".job WHERE id = $1`, [copyId]);
    expect(rows[0]!.source_id).toBe(job.id);
  });

  it("records the supervisor's expiry of an attempt that ran too long", async () => {
    const job = await states.active({ ...pay(), options: { expireIn: { seconds: 1n } } });
    await db.query(`UPDATE "${db.bossSchema}".job SET started_on = now() - interval '10 seconds' WHERE id = $1`, [job.id]);
    // The service's own pg-boss supervises every few seconds.
    const deadline = Date.now() + 20_000;
    let log = await eventsOf(job.id);
    while (!log.some((e) => e.type === "expired") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      log = await eventsOf(job.id);
    }
    expect(log.map((e) => e.type)).toEqual(["created", "started", "expired", "retry_scheduled"]);
    expect(log[2]!.detail).toMatchObject({ value: { message: "job timed out" } });
  });

  it("records cancellation, a cancel request, and a retry of a cancelled job", async () => {
    const waiting = await states.add(pay());
    await admin.cancelJob({ id: waiting.id });
    await admin.retryJob({ id: waiting.id });
    expect((await eventsOf(waiting.id)).map((e) => e.type)).toEqual(["created", "cancelled", "redriven"]);
    const running = await states.active(pay());
    await admin.cancelJob({ id: running.id });
    expect((await eventsOf(running.id)).map((e) => e.type)).toEqual(["created", "started", "cancel_requested"]);
  });

  it("records nothing for heartbeats", async () => {
    const job = await states.active(pay());
    await db.query(`UPDATE "${db.bossSchema}".job SET heartbeat_on = now() WHERE id = $1`, [job.id]);
    expect((await eventsOf(job.id)).map((e) => e.type)).toEqual(["created", "started"]);
  });
});

describe("cursor", () => {
  const insertJob = (c: pg.ClientBase) =>
    c.query(`INSERT INTO "${db.bossSchema}".job (name, data) VALUES ($1, '{}') RETURNING id`, [bossQueueOf("analytics:aggregate")]);

  async function readAll(from: EventPosition): Promise<{ events: EventRow[]; position: EventPosition; pending: boolean }> {
    const all: EventRow[] = [];
    let position = from;
    for (;;) {
      const { events: batch, pending, full } = await events().read(pool, position, 500);
      all.push(...batch);
      const last = batch[batch.length - 1];
      if (last) position = { xid: last.xid, seq: last.seq };
      if (!full) return { events: all, position, pending };
    }
  }

  /**
   * Reads from `from` until every job of `ids` has an event. The cursor is commit-ordered across the
   * whole cluster: a transaction of another test file running meanwhile (on another database of the
   * same server) rightly holds the later events back for as long as it runs.
   */
  async function readUntil(from: EventPosition, ids: string[]): Promise<{ events: EventRow[]; position: EventPosition }> {
    const all: EventRow[] = [];
    let position = from;
    return eventually(
      async () => {
        const batch = await readAll(position);
        all.push(...batch.events);
        position = batch.position;
        const seen = new Set(all.map((e) => e.job_id));
        return ids.every((id) => seen.has(id)) && { events: all, position };
      },
      `the events of ${ids.length} jobs`,
      30_000,
      20,
    );
  }

  it("holds back a later transaction's events until an earlier one commits", async () => {
    const start = await events().now(pool);
    const t1 = await pool.connect();
    const t2 = await pool.connect();
    try {
      await t1.query("BEGIN");
      const {
        rows: [first],
      } = await insertJob(t1); // t1 takes the older xid
      await t2.query("BEGIN");
      const {
        rows: [second],
      } = await insertJob(t2);
      await t2.query("COMMIT");

      const early = await readAll(start);
      expect(early.events.map((e) => e.job_id)).not.toContain(second.id);
      expect(early.pending).toBe(true);

      await t1.query("COMMIT");
      const late = await readUntil(early.position, [first.id, second.id]);
      const ids = late.events.map((e) => e.job_id);
      expect(ids.indexOf(first.id)).toBeGreaterThanOrEqual(0);
      expect(ids.indexOf(second.id)).toBeGreaterThan(ids.indexOf(first.id));
    } finally {
      t1.release();
      t2.release();
    }
  });

  it("serves every event exactly once while 40 transactions commit in random order", async () => {
    const start = await events().now(pool);
    const served: EventRow[] = [];
    let position = start;
    let writing = true;
    const reader = (async () => {
      while (writing) {
        const batch = await readAll(position);
        served.push(...batch.events);
        position = batch.position;
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const written: string[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async () => {
        const c = await pool.connect();
        try {
          await c.query("BEGIN");
          const { rows } = await insertJob(c);
          await new Promise((r) => setTimeout(r, Math.random() * 60));
          const { rows: more } = await insertJob(c);
          await c.query("COMMIT");
          written.push(rows[0].id, more[0].id);
        } finally {
          c.release();
        }
      }),
    );
    writing = false;
    await reader;
    const seen = new Set(served.map((e) => e.job_id));
    served.push(
      ...(
        await readUntil(
          position,
          written.filter((id) => !seen.has(id)),
        )
      ).events,
    );
    const servedIds = served.map((e) => e.job_id);
    expect(new Set(servedIds).size).toBe(servedIds.length);
    expect(new Set(servedIds)).toEqual(new Set(written));
    const keys = served.map((e) => [BigInt(e.xid), e.seq] as const);
    for (let i = 1; i < keys.length; i++) {
      const [px, ps] = keys[i - 1]!;
      const [x, s] = keys[i]!;
      expect(x > px || (x === px && s > ps)).toBe(true);
    }
  });
});
