/**
 * Streams on one replica: WatchJob from its snapshot to its final event, each change as it commits
 * (not behind unrelated transactions, nor behind a taken pool), none skipped or repeated while the job
 * races the watch; WatchJobs filtered, owned, resumable from a cursor (exactly the missed events),
 * OUT_OF_RANGE past the retention; a slow consumer is cut off; streams are capped; WatchMetrics shares
 * one sampler; a stop ends streams with UNAVAILABLE.
 */
import pg from "pg";
import type { PgBoss } from "pg-boss";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type JobEvent, JobEventType, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { testBoss } from "./support/boss.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure } from "./support/errors.js";
import { bossQueueOf, jobStates } from "./support/job-states.js";
import { email, payment } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const db = testDatabase();
let svc: TestService;
let boss: PgBoss;
let admin: ReturnType<typeof client<typeof JobService>>;
let a: ReturnType<typeof client<typeof JobService>>;
let states: ReturnType<typeof jobStates>;

beforeAll(async () => {
  svc = await startTestService(db, { MAX_STREAMS_PER_PRINCIPAL: "50" });
  boss = await testBoss(db);
  admin = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
  a = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
  states = jobStates(admin, boss, db);
});
afterAll(async () => {
  await boss?.stop({ graceful: false, close: true });
  await svc?.stop();
  await db.drop();
});

/** Collects a stream's events until it ends (or `signal`). */
async function collect(stream: AsyncIterable<{ event?: JobEvent }>): Promise<JobEvent[]> {
  const out: JobEvent[] = [];
  for await (const m of stream) out.push(m.event!);
  return out;
}
const types = (events: JobEvent[]) => events.map((e) => JobEventType[e.type]);

describe("WatchJob", () => {
  it("sends a snapshot, every change, and ends after the final event", async () => {
    const { job } = await a.addJob({ type: "payment:process", payload: payment() });
    const watching = collect(a.watchJob({ id: job!.id }));
    await eventually(async () => svc.service.engine!.parts.feed.subscribers() > 0, "the watch to subscribe");
    await new Promise((r) => setTimeout(r, 100));
    const claimed = (await db.query(`UPDATE "${db.bossSchema}".job SET state = 'active', started_on = now() WHERE id = $1 RETURNING retry_count`, [job!.id]))
      .rows[0]!;
    await boss.complete(bossQueueOf("payment:process"), { id: job!.id, retryCount: claimed.retry_count }, { chargeId: "ch_1" });
    const events = await watching;
    expect(types(events)).toEqual(["SNAPSHOT", "STARTED", "COMPLETED"]);
    expect(events[0]!.job!.state).toBe(JobState.CREATED);
    expect(events[1]!.job!.state).toBe(JobState.ACTIVE);
    expect(events[1]!.previousState).toBe(JobState.CREATED);
    expect(events[2]!.job).toMatchObject({ state: JobState.COMPLETED, result: { chargeId: "ch_1" } });
    expect(events.every((e) => e.cursor !== "")).toBe(true);
  });

  it("delivers a change as it commits, not after an unrelated transaction still running", async () => {
    const { job } = await a.addJob({ type: "payment:process", payload: payment() });
    const stream = a.watchJob({ id: job!.id })[Symbol.asyncIterator]();
    expect(JobEventType[(await stream.next()).value.event.type]).toBe("SNAPSHOT");
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    try {
      // A transaction with an xid, left open: it holds back every reader that waits for the horizon.
      await other.query("BEGIN");
      await other.query("SELECT pg_current_xact_id()");
      await db.query(`UPDATE "${db.bossSchema}".job SET state = 'active', started_on = now() WHERE id = $1`, [job!.id]);
      await boss.complete(bossQueueOf("payment:process"), { id: job!.id, retryCount: 0 }, { chargeId: "ch_2" });
      const next = async () => JobEventType[(await stream.next()).value.event.type];
      expect([await next(), await next()]).toEqual(["STARTED", "COMPLETED"]);
    } finally {
      await other.query("ROLLBACK");
      await other.end();
    }
  });

  it("delivers a change while every connection of the service's pool is taken (the feed reads on its own)", async () => {
    const { job } = await a.addJob({ type: "payment:process", payload: payment() });
    const stream = a.watchJob({ id: job!.id })[Symbol.asyncIterator]();
    expect(JobEventType[(await stream.next()).value.event.type]).toBe("SNAPSHOT");
    const pool = svc.service.engine!.parts.pool;
    const held = await Promise.all(Array.from({ length: pool.options.max }, () => pool.connect()));
    try {
      expect(pool.totalCount).toBe(pool.options.max);
      expect(pool.idleCount).toBe(0);
      await db.query(`UPDATE "${db.bossSchema}".job SET state = 'active', started_on = now() WHERE id = $1`, [job!.id]);
      await boss.complete(bossQueueOf("payment:process"), { id: job!.id, retryCount: 0 }, { chargeId: "ch_3" });
      // Within the pool's connection timeout (5 s): a read that waited for the pool would not be here yet.
      const next = async () => {
        const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no event within 3 s")), 3000).unref());
        return JobEventType[(await Promise.race([stream.next(), timeout])).value.event.type];
      };
      expect([await next(), await next()]).toEqual(["STARTED", "COMPLETED"]);
    } finally {
      for (const c of held) c.release();
    }
  });

  it("gives every watch each change after its snapshot exactly once, in order, while the job changes under it", async () => {
    const { job } = await a.addJob({ type: "payment:process", payload: payment() });
    const table = `"${db.bossSchema}".job`;
    const attempts = 40;
    const watches: Promise<JobEvent[]>[] = [];
    const opening = (async () => {
      for (let i = 0; i < 20; i++) {
        watches.push(collect(a.watchJob({ id: job!.id })));
        await new Promise((r) => setTimeout(r, Math.random() * 15));
      }
    })();
    // Each attempt starts (a STARTED event with its retry count) and goes back to retry (no event).
    for (let n = 0; n < attempts; n++) {
      await db.query(`UPDATE ${table} SET state = 'active', started_on = now(), retry_count = $2 WHERE id = $1`, [job!.id, n]);
      await db.query(`UPDATE ${table} SET state = 'retry' WHERE id = $1`, [job!.id]);
      await new Promise((r) => setTimeout(r, 5));
    }
    await opening;
    await db.query(`UPDATE ${table} SET state = 'active', started_on = now(), retry_count = $2 WHERE id = $1`, [job!.id, attempts]);
    await boss.complete(bossQueueOf("payment:process"), { id: job!.id, retryCount: attempts }, { chargeId: "ch_3" });
    for (const events of await Promise.all(watches)) {
      const [snapshot, ...changes] = events;
      const seen = snapshot!.job!;
      // The first change the watch gets is the first one its snapshot did not show, and none is skipped or repeated.
      const first = seen.state === JobState.ACTIVE || seen.state === JobState.RETRY ? seen.retryCount + 1 : 0;
      const expected = Array.from({ length: attempts + 1 - first }, (_, i) => `STARTED ${first + i}`);
      expect(changes.map((e) => `${JobEventType[e.type]} ${e.job!.retryCount}`)).toEqual([...expected, `COMPLETED ${attempts}`]);
    }
  });

  it("ends at once for a job already final", async () => {
    const job = await states.completed({ type: "email:send", payload: email() });
    expect(types(await collect(admin.watchJob({ id: job.id })))).toEqual(["SNAPSHOT"]);
  });

  it("ends after the dead letter of a job that failed for good", async () => {
    const job = await states.add({ type: "payment:process", payload: payment(), options: { retryLimit: 0 } });
    const watching = collect(admin.watchJob({ id: job.id }));
    await eventually(async () => svc.service.engine!.parts.feed.subscribers() > 0, "the watch to subscribe");
    await new Promise((r) => setTimeout(r, 100));
    const claimed = (await db.query(`UPDATE "${db.bossSchema}".job SET state = 'active', started_on = now() WHERE id = $1 RETURNING retry_count`, [job.id]))
      .rows[0]!;
    await boss.fail(
      bossQueueOf("payment:process"),
      { id: job.id, retryCount: claimed.retry_count },
      { message: "declined", reason: "CARD_DECLINED", retryable: false },
    );
    const events = await watching;
    expect(types(events)).toEqual(["SNAPSHOT", "STARTED", "FAILED", "DEAD_LETTERED"]);
    expect(events[3]!.job!.deadLetterJobId).not.toBe("");
    expect(events[2]!.job!.lastError!.message).toBe("declined");
  });

  it("hides someone else's job and rejects a malformed id", async () => {
    const { job } = await admin.addJob({ type: "email:send", payload: email() });
    expect((await failure(collect(a.watchJob({ id: job!.id })))).code).toBe(Code.NotFound);
    expect((await failure(collect(a.watchJob({ id: "x" })))).code).toBe(Code.InvalidArgument);
  });
});

describe("WatchJobs", () => {
  it("streams matching changes of the caller's own jobs and resumes from a cursor with exactly the missed events", async () => {
    const controller = new AbortController();
    const seen: JobEvent[] = [];
    const first = (async () => {
      for await (const m of a.watchJobs({ queue: "communication" }, { signal: controller.signal })) seen.push(m.event!);
    })().catch(() => {});
    await eventually(async () => svc.service.engine!.parts.feed.subscribers() > 0, "the stream to subscribe");
    const mine = (await a.addJob({ type: "email:send", payload: email({ subject: "one" }) })).job!;
    await admin.addJob({ type: "email:send", payload: email({ subject: "not mine" }) });
    await a.addJob({ type: "payment:process", payload: payment() }); // another queue
    await eventually(async () => seen.length >= 1, "the first event");
    controller.abort();
    await first;
    expect(types(seen)).toEqual(["CREATED"]);
    expect(seen[0]!.job!.id).toBe(mine.id);

    // Missed while disconnected: a cancel of mine, two more of mine, and others' changes.
    await admin.cancelJob({ id: mine.id });
    const second = (await a.addJob({ type: "email:send", payload: email({ subject: "two" }) })).job!;
    await admin.addJob({ type: "email:send", payload: email({ subject: "still not mine" }) });
    const third = (await a.addJob({ type: "email:send", payload: email({ subject: "three" }) })).job!;
    const resumed: JobEvent[] = [];
    const resume = new AbortController();
    const reading = (async () => {
      for await (const m of a.watchJobs({ queue: "communication", cursor: seen[0]!.cursor }, { signal: resume.signal })) resumed.push(m.event!);
    })().catch(() => {});
    await eventually(async () => resumed.length >= 3, "the missed events");
    await new Promise((r) => setTimeout(r, 300));
    resume.abort();
    await reading;
    expect(resumed.map((e) => [JobEventType[e.type], e.job!.id])).toEqual([
      ["CANCELLED", mine.id],
      ["CREATED", second.id],
      ["CREATED", third.id],
    ]);
  });

  it("filters on types and new states", async () => {
    const controller = new AbortController();
    const seen: JobEvent[] = [];
    const reading = (async () => {
      for await (const m of admin.watchJobs({ types: ["nft:mint"], states: [JobState.CANCELLED] }, { signal: controller.signal })) seen.push(m.event!);
    })().catch(() => {});
    await eventually(async () => svc.service.engine!.parts.feed.subscribers() > 0, "the stream to subscribe");
    const { job } = await admin.addJob({
      type: "nft:mint",
      payload: { ticketId: "t", orderId: "o", recipientWallet: `0x${"1".repeat(40)}`, metadataUri: "ipfs://x" },
    });
    const other = await admin.addJob({ type: "email:send", payload: email() });
    await admin.cancelJob({ id: other.job!.id });
    await admin.cancelJob({ id: job!.id });
    await eventually(async () => seen.length >= 1, "the cancellation");
    await new Promise((r) => setTimeout(r, 200));
    controller.abort();
    await reading;
    expect(seen.map((e) => [JobEventType[e.type], e.job!.id])).toEqual([["CANCELLED", job!.id]]);
  });

  it("refuses a cursor older than the retention with OUT_OF_RANGE, and a malformed one", async () => {
    const { rows } = await db.query(`SELECT xid::text AS xid, seq FROM "${db.schema}".job_event ORDER BY xid, seq LIMIT 1`);
    const old = Buffer.from(`v1:${rows[0]!.xid}:${rows[0]!.seq}`).toString("base64url");
    await db.query(
      `INSERT INTO "${db.schema}".event_watermark (xid, seq) VALUES ($1::xid8, $2) ON CONFLICT (singleton) DO UPDATE SET xid = EXCLUDED.xid, seq = EXCLUDED.seq`,
      [rows[0]!.xid, rows[0]!.seq],
    );
    try {
      const err = await failure(collect(admin.watchJobs({ cursor: old })));
      expect(err.code).toBe(Code.OutOfRange);
    } finally {
      await db.query(`DELETE FROM "${db.schema}".event_watermark`);
    }
    expect((await failure(collect(admin.watchJobs({ cursor: "not-a-cursor" })))).code).toBe(Code.InvalidArgument);
  });
});

describe("limits", () => {
  it("cuts off a consumer that stops reading, instead of buffering without bound", async () => {
    const small = await startTestService(db, { STREAM_BUFFER_BYTES: String(16 * 1024) });
    try {
      const c = client(JobService, small.baseUrl, { protocol: "grpc", token: tokens.admin });
      const stream = c.watchJobs({})[Symbol.asyncIterator]();
      const firstEvent = stream.next().catch((err: unknown) => err);
      await eventually(async () => small.service.engine!.parts.feed.subscribers() > 0, "the stream to subscribe");
      // Far more than the budget, while the client reads nothing.
      for (let i = 0; i < 6; i++)
        await c.addJobs({ jobs: Array.from({ length: 200 }, () => ({ type: "email:send", payload: email({ text: "x".repeat(2000) }) })) });
      await new Promise((r) => setTimeout(r, 3500));
      let error: unknown = await firstEvent;
      if (!(error instanceof Error)) {
        try {
          for (;;) if ((await stream.next()).done) break;
        } catch (err) {
          error = err;
        }
      }
      expect((await failure(Promise.reject(error))).code).toBe(Code.ResourceExhausted);
      await eventually(async () => small.service.engine!.parts.feed.subscribers() === 0, "the stream to be released");
    } finally {
      await small.stop();
    }
  });

  it("caps open streams per principal", async () => {
    const capped = await startTestService(db, { MAX_STREAMS_PER_PRINCIPAL: "2" });
    try {
      const c = client(JobService, capped.baseUrl, { protocol: "grpc", token: tokens.serviceB });
      const controllers = [new AbortController(), new AbortController()];
      const open = controllers.map((ctl) =>
        (async () => {
          for await (const _ of c.watchJobs({}, { signal: ctl.signal }));
        })().catch(() => {}),
      );
      await eventually(async () => capped.service.engine!.parts.feed.subscribers() === 2, "two streams");
      expect((await failure(collect(c.watchJobs({})))).code).toBe(Code.ResourceExhausted);
      for (const ctl of controllers) ctl.abort();
      await Promise.all(open);
    } finally {
      await capped.stop();
    }
  });

  it("ends open streams with UNAVAILABLE when the server stops", async () => {
    const stopping = await startTestService(db);
    const c = client(JobService, stopping.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const reading = failure(collect(c.watchJobs({})));
    await eventually(async () => stopping.service.engine!.parts.feed.subscribers() > 0, "the stream");
    await stopping.stop();
    expect((await reading).code).toBe(Code.Unavailable);
  });
});

describe("WatchMetrics", () => {
  it("sends a snapshot every interval, from one shared sampler", async () => {
    const monitoring = client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    expect(
      (
        await failure(
          (async () => {
            for await (const _ of monitoring.watchMetrics({ interval: { seconds: 0n, nanos: 100_000_000 } }));
          })(),
        )
      ).code,
    ).toBe(Code.InvalidArgument);
    const sampler = svc.service.engine!.parts.sampler;
    const before = sampler.samples();
    const controllers = Array.from({ length: 20 }, () => new AbortController());
    const counts = controllers.map(() => 0);
    const started = Date.now();
    const streams = controllers.map((ctl, i) =>
      (async () => {
        for await (const m of monitoring.watchMetrics({ queue: "money", interval: { seconds: 0n, nanos: 250_000_000 } }, { signal: ctl.signal })) {
          expect(m.snapshot!.queues.map((q) => q.queue)).toEqual(["money"]);
          counts[i]!++;
        }
      })().catch(() => {}),
    );
    await new Promise((r) => setTimeout(r, 2000));
    for (const c of controllers) c.abort();
    await Promise.all(streams);
    const elapsed = Date.now() - started;
    const taken = sampler.samples() - before;
    for (const n of counts) {
      // Every snapshot the sampler took while the stream was open (at most one per 250 ms tick).
      expect(n, `counts ${counts.join(",")}, samples ${taken}, ${elapsed} ms`).toBeGreaterThanOrEqual(Math.min(4, taken - 1));
      expect(n).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 1);
    }
    expect(taken, `samples in ${elapsed} ms`).toBeGreaterThanOrEqual(2);
    // 20 streams, one snapshot per tick: not 20.
    expect(sampler.samples() - before).toBeLessThanOrEqual(Math.ceil(elapsed / 250) + 2);
  });
});
