/**
 * Real processes, real PostgreSQL restarts: one service process (workers on) against a PostgreSQL
 * cluster of this file's own, while clients call AddJob continuously. PostgreSQL is taken down for a
 * few seconds (a fast shutdown; an immediate shutdown; every PostgreSQL process killed at once, as
 * a crash) and started again on the same port and data directory. Every acknowledged AddJob's job exists
 * afterwards and completes, charged once; calls during the outage fail with UNAVAILABLE, promptly;
 * grpc.health.v1 and /readyz go NOT_SERVING and come back by themselves; the process never exits.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../gen/health/v1/health_pb.js";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { bossQueueName } from "../src/engine/registry.js";
import { client } from "./support/clients.js";
import type { TestDatabase } from "./support/database.js";
import { jobHistories, unsoundHistories } from "./support/job-history.js";
import { payment } from "./support/payloads.js";
import { createOwnCluster, type OwnCluster, type StopMode } from "./support/pg-cluster.js";
import { freePort, type ServiceProcess, spawnService, waitForHttp } from "./support/process.js";
import { runAlone } from "./support/run-alone.js";
import { testEnv, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

runAlone();

const CLIENTS = 4;
/** How long PostgreSQL stays down. */
const OUTAGE_MS = 5000;
/** A call that takes longer than this hangs, as far as a client is concerned. */
const CALL_TIMEOUT_MS = 15_000;
/** Longest a call may take, outage or not (the pool's connect timeout is 5 s). */
const CALL_BOUND_MS = 8000;
const paymentQueue = bossQueueName("money", "payment:process");

let cluster: OwnCluster | undefined;
let svc: ServiceProcess | undefined;

beforeAll(async () => {
  cluster = await createOwnCluster();
  const own = cluster;
  const database: TestDatabase = { url: own.url, schema: "queue_service", bossSchema: "pgboss", query: own.query, drop: async () => {} };
  const port = await freePort();
  svc = spawnService(
    testEnv(database, {
      PORT: String(port),
      WORKERS_ENABLED: "true",
      MONEY_CONCURRENCY: "10",
      SANDBOX_LATENCY_MS: "200",
      WORKER_POLL_INTERVAL_MS: "250",
    }),
  );
  const started = svc;
  await waitForHttp(`${started.baseUrl}/readyz`, (s) => s === 200).catch((err: Error) => {
    throw new Error(`${err.message}\n${started.output()}`);
  });
}, 90_000);

afterAll(async () => {
  await svc?.stop("SIGKILL");
  await cluster?.destroy();
});

/** One AddJob call as a client saw it. */
interface Call {
  key: string;
  startedAt: number;
  ms: number;
  code: Code | "ok";
  message?: string;
  jobId?: string;
  deduplicated?: boolean;
}

/**
 * Clients calling AddJob in a loop, each job with an idempotency key. A call that fails is repeated
 * with the same key and request, as a well-behaved client does: the call may have committed before
 * its answer was lost, and the key makes the repeat return that job instead of adding a second.
 */
function startClients(baseUrl: string, tag: string) {
  const calls: Call[] = [];
  let stopped = false;
  const loops = Array.from({ length: CLIENTS }, async (_, n) => {
    const api = client(JobService, baseUrl, { protocol: "grpc", token: tokens.serviceA });
    let seq = 0;
    let pending: { key: string; payload: ReturnType<typeof payment> } | undefined;
    while (!stopped) {
      const request = pending ?? { key: `${tag}-${n}-${seq++}`, payload: payment() };
      const startedAt = Date.now();
      try {
        const { job, deduplicated } = await api.addJob(
          { type: "payment:process", payload: request.payload, options: { idempotencyKey: request.key, retryDelay: { seconds: 1n }, retryBackoff: false } },
          { timeoutMs: CALL_TIMEOUT_MS },
        );
        calls.push({ key: request.key, startedAt, ms: Date.now() - startedAt, code: "ok", jobId: job!.id, deduplicated });
        pending = undefined;
        await new Promise((r) => setTimeout(r, 20)); // pacing: about 40 jobs/s from the four clients
      } catch (err) {
        const e = ConnectError.from(err);
        calls.push({ key: request.key, startedAt, ms: Date.now() - startedAt, code: e.code, message: e.rawMessage });
        pending = request;
        await new Promise((r) => setTimeout(r, 100)); // a client's retry backoff
      }
    }
  });
  return {
    calls,
    acknowledged: () => calls.filter((c) => c.code === "ok"),
    async stop() {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

let health: ReturnType<typeof client<typeof Health>> | undefined;
/** The service's log lines above info, its start and stop, and anything not JSON (an uncaught exception): the last `n`. */
const serviceProblems = (n = 60) =>
  svc!
    .output()
    .split("\n")
    .filter((l) => l.trim() && (!/^\{"level":"(info|debug)"/.test(l) || /"msg":"(signal received|stopping|stopped|ready)"/.test(l)))
    .slice(-n)
    .join("\n");
/** Fails at once, with its log, if the service process has exited. */
const assertAlive = () => {
  if (svc!.child.exitCode !== null || svc!.child.signalCode !== null) {
    throw new Error(`the service process exited (code ${svc!.child.exitCode}, signal ${svc!.child.signalCode}):\n${serviceProblems()}`);
  }
};
const servingStatus = async () => {
  assertAlive();
  health ??= client(Health, svc!.baseUrl, { protocol: "grpc" });
  try {
    return (await health.check({ service: "" }, { timeoutMs: 2000 })).status;
  } catch {
    return undefined;
  }
};
const readyz = async () => (await fetch(`${svc!.baseUrl}/readyz`, { signal: AbortSignal.timeout(2000) })).status;
const jobsOfQueue = async () =>
  (
    await cluster!.query<{ id: string; state: string; key: string | null; retry_count: number }>(
      `SELECT id::text, state::text, data->>'idempotencyKey' AS key, retry_count FROM pgboss.job WHERE name = $1`,
      [paymentQueue],
    )
  ).rows;

describe("PostgreSQL restarted under enqueue and processing", () => {
  it.each<[StopMode]>([["fast"], ["immediate"], ["crash"]])(
    "%s stop: nothing acknowledged is lost, calls fail UNAVAILABLE, health recovers by itself",
    async (mode) => {
      const own = cluster!;
      const proc = svc!;
      assertAlive(); // an earlier case may have seen it die
      if (!own.running()) await own.start(); // an earlier case failed during its outage
      const clients = startClients(proc.baseUrl, mode);
      let downAt = 0;
      let upAt = 0;
      let notServingMs = 0;
      let servingAgainMs = 0;
      let readyzDuringOutage = 0;
      let firstAckAfterRestartMs = 0;
      try {
        // Traffic flowing and payments running when PostgreSQL goes.
        await eventually(async () => clients.acknowledged().length >= 40, "40 acknowledged AddJob calls", 20_000);
        await eventually(
          async () => (await own.query(`SELECT 1 FROM pgboss.job WHERE name = $1 AND state = 'active' LIMIT 1`, [paymentQueue])).rowCount === 1,
          "a payment running",
          20_000,
        );

        downAt = Date.now();
        await own.stop(mode);
        notServingMs = (await eventually(async () => (await servingStatus()) === Serving.NOT_SERVING && Date.now(), "health NOT_SERVING", 10_000, 50)) - downAt;
        readyzDuringOutage = await readyz();
        // The outage lasts OUTAGE_MS, whatever the checks above took.
        await new Promise((r) => setTimeout(r, Math.max(0, downAt + OUTAGE_MS - Date.now())));
        expect(await servingStatus()).toBe(Serving.NOT_SERVING);

        await own.start();
        upAt = Date.now();
        servingAgainMs = (await eventually(async () => (await servingStatus()) === Serving.SERVING && Date.now(), "health SERVING again", 30_000, 50)) - upAt;
        expect(await readyz()).toBe(200);
        const firstAck = await eventually(
          async () => clients.acknowledged().find((c) => c.startedAt >= upAt),
          "an AddJob acknowledged after the restart",
          30_000,
        );
        firstAckAfterRestartMs = firstAck.startedAt + firstAck.ms - upAt;
        const ackedBefore = clients.acknowledged().length;
        await eventually(async () => clients.acknowledged().length >= ackedBefore + 40, "40 more acknowledged calls", 20_000);
      } finally {
        await clients.stop();
      }

      assertAlive();
      expect(readyzDuringOutage).toBe(503);

      // Calls failed with UNAVAILABLE and nothing else, and none hung.
      const failed = clients.calls.filter((c) => c.code !== "ok");
      const duringOutage = failed.filter((c) => c.startedAt >= downAt && c.startedAt < upAt);
      expect(failed.filter((c) => c.code !== Code.Unavailable).map((c) => `${Code[c.code as Code]}: ${c.message}`)).toEqual([]);
      expect(duringOutage.length).toBeGreaterThan(0);
      const slowest = Math.max(...clients.calls.map((c) => c.ms));
      expect(slowest).toBeLessThan(CALL_BOUND_MS);

      // Every acknowledged job exists now (durable before the answer), once per idempotency key.
      const acked = clients.acknowledged();
      const ackedIds = [...new Set(acked.map((c) => c.jobId!))];
      expect(ackedIds).toHaveLength(new Set(acked.map((c) => c.key)).size);
      const present = new Set((await jobsOfQueue()).map((j) => j.id));
      expect(ackedIds.filter((id) => !present.has(id))).toEqual([]);

      // Every job of the queue (acknowledged, or committed with its answer lost) completes.
      const waitStarted = Date.now();
      await eventually(async () => (await jobsOfQueue()).every((j) => j.state === "completed"), "every payment to complete", 90_000, 250).catch(
        async (err: Error) => {
          const { rows } = await own.query(
            `SELECT j.id, j.state, j.retry_count, j.started_on, j.heartbeat_on, j.start_after, j.output,
                (SELECT json_agg(json_build_object('type', e.type, 'at', e.occurred_at) ORDER BY e.xid, e.seq) FROM queue_service.job_event e WHERE e.job_id = j.id) AS events
         FROM pgboss.job j WHERE j.name = $1 AND j.state <> 'completed'`,
            [paymentQueue],
          );
          throw new Error(`${err.message}; not completed at ${new Date().toISOString()}: ${JSON.stringify(rows, null, 1)}\nservice log:\n${serviceProblems()}`);
        },
      );
      const drainMs = Date.now() - waitStarted;
      const jobs = await jobsOfQueue();
      const perKey = new Map<string, number>();
      for (const j of jobs) perKey.set(j.key ?? "", (perKey.get(j.key ?? "") ?? 0) + 1);
      expect([...perKey].filter(([, n]) => n > 1)).toEqual([]);

      // Charged once each, and no job ever ran two attempts at once.
      const ids = jobs.map((j) => j.id);
      const { rows: ledger } = await own.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM queue_service.sandbox_ledger WHERE root_job_id = ANY($1::uuid[])`,
        [ids],
      );
      expect(ledger[0]!.n).toBe(jobs.length);
      expect(unsoundHistories(await jobHistories(own.query, "queue_service", ids))).toEqual({});

      const codes: Record<string, number> = {};
      for (const c of failed) codes[Code[c.code as Code]] = (codes[Code[c.code as Code]] ?? 0) + 1;
      const messages = [...new Set(failed.map((c) => c.message))];
      console.info(
        `pg ${mode} stop: ${clients.calls.length} calls, ${acked.length} acknowledged (${acked.filter((c) => c.deduplicated).length} deduplicated repeats), ` +
          `${failed.length} failed ${JSON.stringify(codes)} (${duringOutage.length} during the outage), slowest call ${slowest} ms; ` +
          `NOT_SERVING ${notServingMs} ms after the stop, SERVING ${servingAgainMs} ms and first acknowledged call ${firstAckAfterRestartMs} ms after the restart; ` +
          `${jobs.length} jobs in the queue so far, ${jobs.filter((j) => j.retry_count > 0).length} retried, all completed ${drainMs} ms after the clients stopped; ` +
          `messages: ${JSON.stringify(messages)}`,
      );
    },
    150_000,
  );
});
