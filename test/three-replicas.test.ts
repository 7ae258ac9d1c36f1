/**
 * Three replicas, started together on one fresh database, work through 100,000 mixed jobs of every
 * job type while the test pauses a queue and limits a job type's rate through them:
 *
 * - the counts add up: every added job ends completed, dead-lettered (failed, with its copy in the dead
 *   letter queue) or cancelled, exactly as its payload and options imply, and GetQueueStats says so too;
 * - no job ever had two attempts running at once, and each completed job completed once (job events);
 * - every completed payment and mint is in the sandbox ledger exactly once;
 * - the paused queue starts nothing until it is resumed, while the others run at full tilt;
 * - the combined start rate of the limited job type stays within its token bucket.
 *
 * QS_THREE_REPLICA_JOBS shrinks the run for local iterations (default 100,000).
 */

import { randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, describe, expect, it } from "vitest";
import { type AddJobRequestSchema, JobService } from "../gen/jobs/v1/job_service_pb.js";
import { MonitoringService, RateLimitScope } from "../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { jobHistories, unsoundHistories } from "./support/job-history.js";
import { analytics, email, nftMint, payment } from "./support/payloads.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { worstWindow } from "./support/rate-windows.js";
import { runAlone } from "./support/run-alone.js";
import { tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

runAlone();

const TOTAL = Number(process.env.QS_THREE_REPLICA_JOBS ?? 100_000);
const BATCH = 1000;
/** Starts per second allowed for nft:mint across the three replicas. */
const MINT_LIMIT = 100;
/** How long the paused queue is watched while everything else runs. */
const PAUSE_HOLD_MS = 4000;
const fast = { retryDelay: durationFromMs(1000), retryBackoff: false };

/** What each kind of job must end as. */
type Outcome = "completed" | "dead_lettered" | "cancelled";
interface Kind {
  share: number;
  outcome: Outcome;
  request: () => MessageInitShape<typeof AddJobRequestSchema>;
}
const KINDS: Record<string, Kind> = {
  payment: { share: 0.805, outcome: "completed", request: () => ({ type: "payment:process", payload: payment() }) },
  flaky: { share: 0.02, outcome: "completed", request: () => ({ type: "payment:process", payload: payment({ paymentMethod: "tok_flaky" }), options: fast }) },
  declined: { share: 0.01, outcome: "dead_lettered", request: () => ({ type: "payment:process", payload: payment({ paymentMethod: "tok_decline" }) }) },
  gatewayDown: {
    share: 0.005,
    outcome: "dead_lettered",
    request: () => ({ type: "payment:process", payload: payment({ paymentMethod: "tok_gateway_timeout" }), options: { ...fast, retryLimit: 1 } }),
  },
  mint: {
    share: 0.03,
    outcome: "completed",
    request: () => ({ type: "nft:mint", payload: nftMint({ ticketId: `tkt_${randomUUID()}` }) }),
  },
  email: { share: 0.1, outcome: "completed", request: () => ({ type: "email:send", payload: email() }) },
  rollup: { share: 0.001, outcome: "completed", request: () => ({ type: "analytics:aggregate", payload: analytics() }) },
  // Delayed by an hour, then cancelled by the test.
  cancelled: {
    share: 0.029,
    outcome: "cancelled",
    request: () => ({ type: "payment:process", payload: payment(), options: { schedule: { case: "delay", value: durationFromMs(3_600_000) } } }),
  },
};

/** The batches to add: every kind's share of TOTAL, interleaved so each batch is mixed. */
function plan(): (keyof typeof KINDS)[] {
  const counts = Object.entries(KINDS).map(([name, k]) => [name, Math.round(k.share * TOTAL)] as const);
  const order: string[] = [];
  const left = new Map(counts);
  while (order.length < TOTAL && [...left.values()].some((n) => n > 0)) {
    for (const [name] of counts) {
      const n = left.get(name)!;
      // Each kind takes its turn in proportion to its share.
      const take = Math.min(n, Math.max(1, Math.round(KINDS[name]!.share * 100)));
      for (let i = 0; i < take && order.length < TOTAL; i++) order.push(name);
      left.set(name, n - take);
    }
  }
  return order;
}

const db = testDatabase();
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await db.drop();
});

const replica = () =>
  startReplica(
    db,
    processes,
    { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "250", DATABASE_POOL_MAX: "6", PGBOSS_POOL_MAX: "6", LOG_LEVEL: "warn" },
    60_000,
  );

const api = (p: ServiceProcess) => ({
  jobs: client(JobService, p.baseUrl, { protocol: "grpc", token: tokens.admin }),
  queues: client(QueueService, p.baseUrl, { protocol: "grpc", token: tokens.admin }),
  monitoring: client(MonitoringService, p.baseUrl, { protocol: "grpc", token: tokens.admin }),
});

describe("three replicas on one database", () => {
  it(`run ${TOTAL} mixed jobs: the counts add up, no job runs twice at once, pause and rate limit hold`, async () => {
    // Started together on a fresh schema: migrations and trigger installation race and must not fail.
    const replicas = await Promise.all([replica(), replica(), replica()]);
    const [a, b, c] = replicas.map(api) as [ReturnType<typeof api>, ReturnType<typeof api>, ReturnType<typeof api>];
    const started = Date.now();

    await a.monitoring.setRateLimit({ rateLimit: { scope: RateLimitScope.JOB_TYPE, key: "nft:mint", limit: MINT_LIMIT, interval: durationFromMs(1000) } });
    await b.queues.pauseQueue({ name: "communication" });

    // Add everything, in mixed batches of 1,000, through all three replicas, two calls at a time.
    const kinds = plan();
    const idsOf = new Map<string, string[]>(Object.keys(KINDS).map((k) => [k, []]));
    const rootOf = new Map<string, string>();
    const batches = Math.ceil(kinds.length / BATCH);
    let next = 0;
    await Promise.all(
      [0, 1].map(async () => {
        for (let n = next++; n < batches; n = next++) {
          const slice = kinds.slice(n * BATCH, (n + 1) * BATCH);
          const { results } = await [a, b, c][n % 3]!.jobs.addJobs({ jobs: slice.map((k) => KINDS[k]!.request()) });
          results.forEach((r, i) => {
            idsOf.get(slice[i]!)!.push(r.job!.id);
            rootOf.set(r.job!.id, r.job!.rootJobId);
          });
        }
      }),
    );
    const added = [...idsOf.values()].reduce((n, ids) => n + ids.length, 0);
    expect(added).toBe(TOTAL);
    const addedMs = Date.now() - started;

    // Cancel the delayed ones, through all three replicas.
    const toCancel = idsOf.get("cancelled")!;
    let nextCancel = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = nextCancel++; i < toCancel.length; i = nextCancel++) await [a, b, c][i % 3]!.jobs.cancelJob({ id: toCancel[i]! });
      }),
    );

    // The paused queue: while the replicas work through the rest, no email starts.
    const emails = idsOf.get("email")!;
    const emailStarts = async () =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".job_event WHERE type = 'started' AND job_id = ANY($1::uuid[])`, [emails]))
        .rows[0]!.n;
    const holdUntil = Date.now() + PAUSE_HOLD_MS;
    while (Date.now() < holdUntil) {
      expect(await emailStarts(), "emails started while their queue was paused").toBe(0);
      await new Promise((r) => setTimeout(r, 250));
    }
    const paused = (await c.queues.getQueueStats({ name: "communication" })).stats!;
    expect(paused.active).toBe(0n);
    expect(paused.queued).toBe(BigInt(emails.length));
    await c.queues.resumeQueue({ name: "communication" });

    // Everything reaches its end.
    const expectedFinal = Object.entries(KINDS).reduce((n, [name, k]) => n + (k.outcome === "cancelled" ? 0 : idsOf.get(name)!.length), 0);
    const finals = async () =>
      (
        await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[]) AND state IN ('completed', 'failed')`, [
          [...rootOf.keys()],
        ])
      ).rows[0]!.n;
    await eventually(async () => (await finals()) === expectedFinal, `${expectedFinal} jobs to finish`, 480_000, 1000);
    const totalMs = Date.now() - started;

    // The counts add up, kind by kind.
    const { rows: states } = await db.query<{ id: string; state: string }>(`SELECT id::text, state FROM "${db.bossSchema}".job WHERE id = ANY($1::uuid[])`, [
      [...rootOf.keys()],
    ]);
    const stateOf = new Map(states.map((r) => [r.id, r.state]));
    const deadLetterSources = new Set<string>();
    for (const queue of ["money", "communication", "background"]) {
      let pageToken = "";
      do {
        const page = await a.queues.listDeadLetters({ queue, pageSize: 1000, pageToken });
        for (const j of page.jobs) {
          expect(deadLetterSources.has(j.sourceJobId), `two dead letters of ${j.sourceJobId}`).toBe(false);
          deadLetterSources.add(j.sourceJobId);
        }
        pageToken = page.nextPageToken;
      } while (pageToken);
    }
    const outcomeOf = (id: string): string => {
      const state = stateOf.get(id);
      if (state === "failed") return deadLetterSources.has(id) ? "dead_lettered" : "failed";
      return state ?? "missing";
    };
    const tally: Record<string, number> = { completed: 0, failed: 0, dead_lettered: 0, cancelled: 0 };
    for (const [name, ids] of idsOf) {
      const wrong = ids.filter((id) => outcomeOf(id) !== KINDS[name]!.outcome).map((id) => `${id}: ${outcomeOf(id)}`);
      expect(wrong.slice(0, 5), `${name} jobs that did not end ${KINDS[name]!.outcome} (${wrong.length})`).toEqual([]);
      for (const id of ids) tally[outcomeOf(id)] = (tally[outcomeOf(id)] ?? 0) + 1;
    }
    expect(tally.completed! + tally.failed! + tally.dead_lettered! + tally.cancelled!).toBe(added);
    expect(deadLetterSources.size).toBe(tally.dead_lettered);

    // GetQueueStats agrees, on any replica.
    const expectedStats = {
      money: { completed: 0, failed: 0, cancelled: 0 },
      communication: { completed: 0, failed: 0, cancelled: 0 },
      background: { completed: 0, failed: 0, cancelled: 0 },
    };
    const queueOfKind = (name: string) => (name === "email" ? "communication" : name === "rollup" ? "background" : "money");
    for (const [name, ids] of idsOf) {
      const s = expectedStats[queueOfKind(name)];
      const outcome = KINDS[name]!.outcome;
      if (outcome === "completed") s.completed += ids.length;
      else if (outcome === "cancelled") s.cancelled += ids.length;
      else s.failed += ids.length;
    }
    for (const [queue, expected] of Object.entries(expectedStats)) {
      const stats = (await [a, b, c][queue.length % 3]!.queues.getQueueStats({ name: queue })).stats!;
      expect({
        queue,
        completed: stats.completed,
        failed: stats.failed,
        cancelled: stats.cancelled,
        queued: stats.queued,
        active: stats.active,
        retrying: stats.retrying,
      }).toEqual({
        queue,
        completed: BigInt(expected.completed),
        failed: BigInt(expected.failed),
        cancelled: BigInt(expected.cancelled),
        queued: 0n,
        active: 0n,
        retrying: 0n,
      });
      expect(stats.deadLettered, `${queue} dead letters`).toBe(BigInt(expected.failed));
    }

    // Never two attempts of a job at once; one completion for each completed job, none for the others.
    const histories = await jobHistories(db.query, db.schema, [...rootOf.keys()]);
    const completions = (id: string) => (outcomeOf(id) === "completed" ? 1 : 0);
    expect(unsoundHistories(histories, completions)).toEqual({});
    const retried = [...histories.values()].filter((events) => events.filter((e) => e.type === "started").length > 1).length;

    // Charged and minted exactly once each.
    const charged = [...idsOf.get("payment")!, ...idsOf.get("flaky")!, ...idsOf.get("mint")!].map((id) => rootOf.get(id)!);
    const { rows: ledger } = await db.query<{ n: number; once: number }>(
      `SELECT count(*)::int AS n, count(*) FILTER (WHERE c = 1)::int AS once
       FROM (SELECT root_job_id, count(*) AS c FROM "${db.schema}".sandbox_ledger WHERE root_job_id = ANY($1::uuid[]) GROUP BY 1) l`,
      [charged],
    );
    expect(ledger[0]).toEqual({ n: charged.length, once: charged.length });

    // The mint limit held across the three replicas.
    const { rows: mintRows } = await db.query<{ t: number }>(
      `SELECT extract(epoch FROM occurred_at) * 1000 AS t FROM "${db.schema}".job_event WHERE type = 'started' AND job_id = ANY($1::uuid[]) ORDER BY occurred_at`,
      [idsOf.get("mint")!],
    );
    const mintStarts = mintRows.map((r) => Number(r.t));
    expect(mintStarts).toHaveLength(idsOf.get("mint")!.length);
    for (const k of [1, 2, 5]) {
      const { within, allowed } = worstWindow(mintStarts, MINT_LIMIT, k);
      expect(within, `mint starts within ${k} s`).toBeLessThanOrEqual(allowed);
    }
    const mintSpanS = (mintStarts.at(-1)! - mintStarts[0]!) / 1000;
    expect(mintSpanS).toBeGreaterThanOrEqual((mintStarts.length - MINT_LIMIT) / MINT_LIMIT - 1);

    // Emails started only after the resume.
    const { rows: firstEmail } = await db.query<{ t: Date }>(
      `SELECT min(occurred_at) AS t FROM "${db.schema}".job_event WHERE type = 'started' AND job_id = ANY($1::uuid[])`,
      [emails],
    );
    expect(firstEmail[0]!.t.getTime()).toBeGreaterThan(started + addedMs + PAUSE_HOLD_MS - 1000);

    // All three did the work: their started counters (/metrics) add up to the attempts the events show.
    const startedBy = await Promise.all(
      replicas.map(async (p) => {
        const text = await (await fetch(`${p.baseUrl}/metrics`)).text();
        return [...text.matchAll(/^queue_service_jobs_started_total\{[^}]*\} (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
      }),
    );
    const { rows: attempts } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM "${db.schema}".job_event WHERE type = 'started'`);
    expect(startedBy.reduce((x, y) => x + y, 0)).toBe(attempts[0]!.n);
    for (const n of startedBy) expect(n).toBeGreaterThan(0);

    console.info(
      `three replicas: ${added} jobs added in ${addedMs} ms, all finished in ${totalMs} ms (${Math.round((added * 1000) / totalMs)} jobs/s end to end); ` +
        `${JSON.stringify(tally)}; attempts per replica ${startedBy.join(" / ")}; ${retried} jobs ran more than one attempt; ` +
        `mint starts ${mintStarts.length} over ${mintSpanS.toFixed(1)} s (limit ${MINT_LIMIT}/s)`,
    );

    const stops = await Promise.all(replicas.map((p) => p.stop("SIGTERM")));
    for (const [i, s] of stops.entries()) expect(s.code, replicas[i]!.output()).toBe(0);
  }, 600_000);
});
