/**
 * The paths a service token could abuse, closed, through the public API: analytics history cannot be
 * wiped (older ranges refused to service principals, cut to what is kept for admins); text that
 * PostgreSQL cannot store (NUL, lone surrogates) in any field of any job type is INVALID_ARGUMENT
 * naming the field, fuzzed with RTL and combining characters, and fails nobody else's add; payloads
 * nested too deep name the path; a WatchJobs cursor older than the retention is OUT_OF_RANGE and a
 * catch-up shows only the caller's events; error logs carry no quoted values; webhooks go only to
 * listed hosts and ports and never to internal addresses unless listed; webhook URLs and alert email
 * addresses are admin-only.
 */
import { Writable } from "node:stream";
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobEventType, JobState } from "../gen/jobs/v1/job_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { AlertMetric, MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { encodeCursor } from "../src/engine/event-cursor.js";
import { postWebhook, WebhookAddressRefused } from "../src/engine/webhooks.js";
import { createLogger } from "../src/logger.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure, violations } from "./support/errors.js";
import { analytics, email, nftMint, payment, refund } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { waitForJob } from "./support/wait.js";
import { startWebhookServer, type WebhookServer } from "./support/webhook.js";

const db = testDatabase();
let svc: TestService;
let hook: WebhookServer;
let a: ReturnType<typeof client<typeof JobService>>;
let aJson: ReturnType<typeof client<typeof JobService>>;
let b: ReturnType<typeof client<typeof JobService>>;
let admin: ReturnType<typeof client<typeof JobService>>;

beforeAll(async () => {
  hook = await startWebhookServer();
  svc = await startTestService(db, {
    WORKERS_ENABLED: "true",
    WORKER_POLL_INTERVAL_MS: "200",
    EMAIL_RATE_LIMIT_PER_MINUTE: "0",
    ALERT_WEBHOOK_ALLOWED_HOSTS: hook.host,
  });
  a = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
  // JSON carries a lone surrogate as an escape; binary protobuf would have replaced it with U+FFFD.
  aJson = client(JobService, svc.baseUrl, { protocol: "connect", binary: false, token: tokens.serviceA });
  b = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceB });
  admin = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
});
afterAll(async () => {
  await svc?.stop();
  await hook?.close();
  await db.drop();
});

const day = 24 * 60 * 60 * 1000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
const jobCount = async () => (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.bossSchema}".job`)).rows[0]!.n;

describe("analytics history", () => {
  it("refuses a service principal a range older than the data kept, naming payload.from", async () => {
    for (const payload of [
      analytics({ from: ago(40 * day), to: ago(20 * day), bucket: "hour" }),
      analytics({ from: ago(4 * day), to: ago(3.5 * day), bucket: "minute" }),
    ]) {
      const err = await failure(a.addJob({ type: "analytics:aggregate", payload }));
      expect(err.code).toBe(Code.InvalidArgument);
      expect(violations(err)[0]).toMatchObject({ field: "payload.from", reason: "OUT_OF_RANGE" });
    }
    // Within the events' retention it is fine.
    await a.addJob({ type: "analytics:aggregate", payload: analytics({ from: ago(60 * 60_000) }) });
  });

  it("lets an admin rebuild only what the data covers: older rollups stay", async () => {
    const hour = new Date(Math.floor((Date.now() - 30 * day) / 3_600_000) * 3_600_000);
    await db.query(
      `INSERT INTO "${db.schema}".job_stats_hour (hour, queue_name, added, started, completed, failed, dead_lettered, cancelled, retried, expired, wait_count, run_count)
       VALUES ($1, 'money/payment.process', 7, 7, 7, 0, 0, 0, 0, 0, 7, 7)`,
      [hour],
    );
    const { job } = await admin.addJob({ type: "analytics:aggregate", payload: analytics({ from: ago(40 * day), to: ago(20 * day), bucket: "hour" }) });
    const done = await waitForJob(admin, job!.id, (j) => j.state === JobState.COMPLETED, "to run", 30_000);
    expect(done.result).toMatchObject({ hours: 0 });
    const { rows } = await db.query(`SELECT added FROM "${db.schema}".job_stats_hour WHERE hour = $1`, [hour]);
    expect(rows).toEqual([{ added: 7 }]);
  });
});

/** Every free-text field of every job type, and a payload with `text` in it. */
const textFields: { type: string; field: string; payload: (text: string) => Record<string, unknown>; path: string }[] = [
  ...["paymentId", "orderId", "customerId", "paymentMethod", "currency"].map((f) => ({
    type: "payment:process",
    field: f,
    payload: (t: string) => payment({ [f]: t }),
    path: `payload.${f}`,
  })),
  ...["paymentId", "currency", "reason", "refundId"].map((f) => ({
    type: "refund:process",
    field: f,
    payload: (t: string) => refund({ [f]: t }),
    path: `payload.${f}`,
  })),
  ...["ticketId", "orderId", "recipientWallet", "metadataUri"].map((f) => ({
    type: "nft:mint",
    field: f,
    payload: (t: string) => nftMint({ [f]: t }),
    path: `payload.${f}`,
  })),
  ...["subject", "text", "html", "replyTo"].map((f) => ({ type: "email:send", field: f, payload: (t: string) => email({ [f]: t }), path: `payload.${f}` })),
  { type: "email:send", field: "to", payload: (t) => email({ to: ["ada@example.com", t] }), path: "payload.to[1]" },
  ...["from", "to", "bucket"].map((f) => ({ type: "analytics:aggregate", field: f, payload: (t: string) => analytics({ [f]: t }), path: `payload.${f}` })),
  { type: "email:send", field: "an unknown key", payload: (t) => email({ [`x${t}`]: 1 }), path: "payload" },
];

/** Text mixing RTL marks, combining characters and ordinary letters. */
const mixedText = fc
  .array(fc.constantFrom("a", "Z", "ü", "\u202e", "\u200f", "\u0301", "\u0327", "שלום", "مرحبا", "😀", " ", "9"), { maxLength: 12 })
  .map((parts) => parts.join(""));
/** The same with one character PostgreSQL cannot store put in. */
const unstorable = fc
  .tuple(mixedText, fc.constantFrom("\u0000", "\ud800", "\udfff", "\ud83d"), mixedText)
  .map(([before, bad, after]) => `${before}${bad}${after}`);

describe("text PostgreSQL cannot store", () => {
  it("is INVALID_ARGUMENT naming the field, in every free-text field of every job type, and nothing is written", async () => {
    const before = await jobCount();
    for (const f of textFields) {
      await fc.assert(
        fc.asyncProperty(unstorable, async (text) => {
          const err = await failure(aJson.addJob({ type: f.type, payload: f.payload(text) as never }));
          expect(err.code, `${f.type} ${f.field}`).toBe(Code.InvalidArgument);
          expect(
            violations(err).map((v) => v.field),
            `${f.type} ${f.field}`,
          ).toContain(f.path);
        }),
        { numRuns: 8 },
      );
    }
    expect(await jobCount()).toBe(before);
  });

  it("lets valid text with RTL and combining characters through the free-text fields, or refuses it as a format, never INTERNAL", async () => {
    for (const f of textFields) {
      await fc.assert(
        fc.asyncProperty(mixedText, async (text) => {
          const outcome = await aJson.addJob({ type: f.type, payload: f.payload(text) as never }).then(
            () => undefined,
            (e) => failure(Promise.reject(e)),
          );
          if (outcome) expect(outcome.code, `${f.type} ${f.field}: ${outcome.rawMessage}`).toBe(Code.InvalidArgument);
        }),
        { numRuns: 5 },
      );
    }
    const { job } = await aJson.addJob({ type: "refund:process", payload: refund({ reason: "מוצר פגום\u202e e\u0301" }) });
    expect((await a.getJob({ id: job!.id })).job!.payload!.reason).toBe("מוצר פגום\u202e e\u0301");
  });

  it("in one caller's add does not fail the others' adds that share its transaction", async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => aJson.addJob({ type: "email:send", payload: email({ subject: i === 7 ? "bad\u0000subject" : `ok ${i}` }) })),
    );
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(19);
    const refused = results[7]!;
    expect(refused.status).toBe("rejected");
  });

  it("is refused in the other text fields too (ListJobs' idempotency_key, alert rule names)", async () => {
    expect(violations(await failure(aJson.listJobs({ idempotencyKey: "k\u0000" })))[0]).toMatchObject({ field: "idempotency_key" });
    const monitoring = client(MonitoringService, svc.baseUrl, { protocol: "connect", binary: false, token: tokens.admin });
    const err = await failure(monitoring.createAlertRule({ rule: { name: "depth\u0000", metric: AlertMetric.QUEUE_DEPTH, queue: "money", threshold: 1 } }));
    expect(violations(err)[0]).toMatchObject({ field: "rule.name", reason: "INVALID_CHARACTER" });
    // A lone surrogate in a typed string field never gets that far: protobuf decoding refuses it.
    expect(
      (await failure(monitoring.createAlertRule({ rule: { name: "depth\ud800", metric: AlertMetric.QUEUE_DEPTH, queue: "money", threshold: 1 } }))).code,
    ).toBe(Code.InvalidArgument);
  });
});

describe("payload limits", () => {
  it("name the path where the nesting limit was crossed", async () => {
    let deep: unknown = "x";
    for (let i = 0; i < 40; i++) deep = { a: deep };
    const err = await failure(a.addJob({ type: "email:send", payload: email({ to: deep }) as never }));
    const [v] = violations(err);
    expect(v).toMatchObject({ reason: "TOO_DEEP" });
    expect(v!.field).toMatch(/^payload\.to(\.a)+$/);
  });
});

describe("logs", () => {
  it("carry a database error's code but not the values it quotes", async () => {
    const lines: string[] = [];
    const logger = createLogger(
      "info",
      new Writable({
        write: (chunk, _e, done) => {
          lines.push(String(chunk));
          done();
        },
      }),
    );
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    const err = await c.query("SELECT $1::jsonb", ['{"reason": "secret-marker \\u0000", "to": "ada@example.com"}']).catch((e: Error) => e);
    await c.query("SELECT $1::uuid", ["secret-marker-2"]).catch((e: Error) => logger.error({ err: e }, "second"));
    await c.end();
    logger.error({ err }, "first");
    logger.warn({ err: (err as Error).message }, "as a message");
    const out = lines.join("");
    expect(out).toContain('"code":"22P05"');
    expect(out).toContain('"code":"22P02"');
    expect(out).not.toMatch(/secret-marker|ada@example\.com/);
  });
});

describe("WatchJobs cursors", () => {
  it("older than the retention are OUT_OF_RANGE, even one made up before retention ever ran", async () => {
    const { job } = await a.addJob({ type: "email:send", payload: email() });
    await db.query(`UPDATE "${db.schema}".job_event SET occurred_at = now() - interval '4 days' WHERE job_id = $1`, [job!.id]);
    const made = encodeCursor({ xid: "0", seq: 0 });
    const err = await failure(
      (async () => {
        for await (const _ of a.watchJobs({ cursor: made })) break;
      })(),
    );
    expect(err.code).toBe(Code.OutOfRange);
    await db.query(`UPDATE "${db.schema}".job_event SET occurred_at = now() WHERE job_id = $1`, [job!.id]);
  });

  it("catch up with the caller's own events only", async () => {
    const { job: first } = await a.addJob({ type: "email:send", payload: email() });
    // A WatchJob's SNAPSHOT carries the position it was read at: a cursor to resume from.
    let cursor = "";
    for await (const { event } of a.watchJob({ id: first!.id })) {
      cursor = event!.cursor;
      break;
    }
    const { job: theirs } = await b.addJob({ type: "email:send", payload: email() });
    const { job: mine } = await a.addJob({ type: "email:send", payload: email() });
    const seen: { id: string; by: string }[] = [];
    for await (const { event } of a.watchJobs({ cursor }, { signal: AbortSignal.timeout(20_000) })) {
      seen.push({ id: event!.job!.id, by: event!.job!.createdBy });
      if (event!.job!.id === mine!.id && event!.type === JobEventType.CREATED) break;
    }
    expect(seen.map((e) => e.id)).toContain(mine!.id);
    expect(seen.map((e) => e.id)).not.toContain(theirs!.id);
    expect(new Set(seen.map((e) => e.by))).toEqual(new Set(["svc-a"]));
  });
});

describe("alert webhooks", () => {
  const policy = (allowedHosts: string[], allowedNetworks: string[] = []) => ({ allowedHosts, allowedNetworks });
  const port = () => Number(hook.host.split(":")[1]);

  it("go only to a listed host and port; a host listed without a port allows only the default port", async () => {
    await expect(postWebhook(hook.url, { n: 1 }, policy(["127.0.0.1"]), 2000)).rejects.toBeInstanceOf(WebhookAddressRefused);
    await expect(postWebhook(hook.url, { n: 2 }, policy([`127.0.0.1:${port() + 1}`]), 2000)).rejects.toBeInstanceOf(WebhookAddressRefused);
    expect(await postWebhook(hook.url, { n: 3 }, policy([hook.host]), 2000)).toBe(204);
    expect(hook.received.map((r) => r.body.n)).toEqual([3]);
  });

  it("never reach an internal address through a name, unless its network is listed", async () => {
    const url = `http://localhost:${port()}/hooks/alerts`;
    await expect(postWebhook(url, { n: 4 }, policy([`localhost:${port()}`]), 2000)).rejects.toThrow(/internal address/);
    expect(await postWebhook(url, { n: 5 }, policy([`localhost:${port()}`], ["127.0.0.0/8", "::1/128"]), 2000)).toBe(204);
    expect(hook.received.map((r) => r.body.n)).toEqual([3, 5]);
  });

  it("are refused when a rule names an unlisted port, and are shown to admins only", async () => {
    const monitoring = client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
    const bad = await failure(
      monitoring.createAlertRule({
        rule: {
          name: "other-port",
          metric: AlertMetric.QUEUE_DEPTH,
          queue: "money",
          threshold: 1,
          targets: [{ target: { case: "webhook", value: { url: `http://127.0.0.1:${port() + 1}/x` } } }],
        },
      }),
    );
    expect(violations(bad)[0]).toMatchObject({ field: "rule.targets[0].webhook.url", reason: "HOST_NOT_ALLOWED" });
    await monitoring.createAlertRule({
      rule: {
        name: "secret-hook",
        metric: AlertMetric.QUEUE_DEPTH,
        queue: "money",
        threshold: 1_000_000,
        targets: [
          { target: { case: "webhook", value: { url: `${hook.url}?token=s3cret` } } },
          { target: { case: "email", value: { to: ["oncall@example.com"] } } },
        ],
      },
    });
    const asService = await client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA }).listAlertRules({});
    const seen = asService.rules.find((r) => r.name === "secret-hook")!;
    expect(seen.targets.map((t) => t.target.case)).toEqual(["webhook", "email"]);
    expect(JSON.stringify(seen.targets.map((t) => t.target.value))).not.toMatch(/s3cret|oncall|127\.0\.0\.1/);
    const asAdmin = (await monitoring.listAlertRules({})).rules.find((r) => r.name === "secret-hook")!;
    expect(asAdmin.targets[0]!.target.value).toMatchObject({ url: `${hook.url}?token=s3cret` });
  });
});
