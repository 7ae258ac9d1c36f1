/**
 * Group commit: concurrent AddJob calls share transactions, and each caller still gets its own
 * outcome: a repeated key its original job, a reused key its ALREADY_EXISTS, a caller over its email
 * quota its RESOURCE_EXHAUSTED, while the others commit.
 */
import { create } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AddJobRequestSchema, JobService } from "../gen/jobs/v1/job_service_pb.js";
import { validateAddJob } from "../src/rpc/validation/add-job.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, errorInfo } from "./support/errors.js";
import { email, payment } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

const db = testDatabase();
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService(db, { EMAIL_RATE_LIMIT_PER_MINUTE: "3", GROUP_COMMIT_CONCURRENCY: "1" });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

type Outcome = { ok: true; id: string; deduplicated: boolean } | { ok: false; err: ConnectError };

describe("concurrent AddJob calls", () => {
  it("share transactions, each with its own outcome", async () => {
    // Several connections, so that the calls really arrive together.
    const jobs = Array.from({ length: 8 }, () => client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA }));
    const call = (i: number, req: Parameters<(typeof jobs)[0]["addJob"]>[0]): Promise<Outcome> =>
      jobs[i % jobs.length]!.addJob(req).then(
        (r) => ({ ok: true as const, id: r.job!.id, deduplicated: r.deduplicated }),
        (err) => ({ ok: false as const, err: ConnectError.from(err) }),
      );
    const plain = Array.from({ length: 40 }, (_, i) => call(i, { type: "payment:process", payload: payment() }));
    const same = payment();
    const repeated = Array.from({ length: 10 }, (_, i) => call(i, { type: "payment:process", payload: same, options: { idempotencyKey: "gc-same" } }));
    const reused = Array.from({ length: 5 }, (_, i) =>
      call(i, { type: "payment:process", payload: payment({ amount: 100 + i }), options: { idempotencyKey: "gc-reused" } }),
    );
    const emails = Array.from({ length: 6 }, (_, i) => call(i, { type: "email:send", payload: email() }));
    const [p, r, u, e] = await Promise.all([Promise.all(plain), Promise.all(repeated), Promise.all(reused), Promise.all(emails)]);

    expect(p.every((o) => o.ok && !o.deduplicated)).toBe(true);
    const ids = p.map((o) => (o as { id: string }).id);
    expect(new Set(ids).size).toBe(40);

    expect(r.every((o) => o.ok)).toBe(true);
    expect(new Set(r.map((o) => (o as { id: string }).id)).size).toBe(1);
    expect(r.filter((o) => o.ok && !o.deduplicated)).toHaveLength(1);

    const winners = u.filter((o) => o.ok) as { id: string }[];
    const losers = u.filter((o) => !o.ok) as { err: ConnectError }[];
    expect(winners).toHaveLength(1);
    expect(losers).toHaveLength(4);
    for (const l of losers) {
      expect(l.err.code).toBe(Code.AlreadyExists);
      expect(errorInfo(l.err)).toMatchObject({ reason: "IDEMPOTENCY_KEY_REUSED", metadata: { job_id: winners[0]!.id } });
    }

    expect(e.filter((o) => o.ok)).toHaveLength(3);
    expect(e.filter((o) => !o.ok).map((o) => (o as { err: ConnectError }).err.code)).toEqual([
      Code.ResourceExhausted,
      Code.ResourceExhausted,
      Code.ResourceExhausted,
    ]);

    // Exactly the acknowledged jobs exist, and they were committed in fewer transactions than calls.
    const acknowledged = [...ids, (r[0] as { id: string }).id, winners[0]!.id, ...e.filter((o) => o.ok).map((o) => (o as { id: string }).id)];
    const { rows } = await db.query<{ n: number; txs: number }>(
      `SELECT count(*)::int AS n, count(DISTINCT xmin::text)::int AS txs FROM "${db.bossSchema}".job WHERE data ->> 'principal' = 'svc-a'`,
    );
    expect(rows[0]!.n).toBe(acknowledged.length);
    expect(rows[0]!.txs).toBeLessThan(acknowledged.length);
  });
});

describe("one batch holding a key twice", () => {
  it("decides both by the key's holder, also when an earlier job holds it", async () => {
    const engine = svc.service.engine!;
    const registry = engine.registry;
    const entry = (amount: number) => {
      const v = validateAddJob(
        create(AddJobRequestSchema, {
          type: "payment:process",
          payload: payment({ amount, orderId: "ord_twice", paymentId: "pay_twice" }),
          options: { idempotencyKey: "gc-twice" },
        }),
        { registry, maxPayloadBytes: 262_144, now: new Date(), admin: false, eventRetentionSeconds: 259_200 },
      );
      return { principal: "svc-a", job: v.job! };
    };
    const [first] = await engine.parts.enqueuer.add([entry(200)], false);
    expect(first!.ok).toBe(true);
    const holder = (first as { record: { id: string } }).record.id;
    // The leader (amount 100) conflicts with the holder; the follower (amount 200) is the holder's request.
    const [leader, follower] = await engine.parts.enqueuer.add([entry(100), entry(200)], false);
    expect(leader!.ok).toBe(false);
    expect((leader as { error: { metadata?: Record<string, string> } }).error.metadata).toEqual({ job_id: holder });
    expect(follower).toMatchObject({ ok: true, deduplicated: true, record: { id: holder } });
  });
});
