/**
 * API rate limits (scope API_PRINCIPAL) across two service processes on one database: together they
 * accept no more than the principal's limit, refuse the rest with RESOURCE_EXHAUSTED and RetryInfo,
 * and leave other principals alone.
 */
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { ConnectError } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import { RetryInfoSchema } from "../gen/google/rpc/error_details_pb.js";
import { MonitoringService, RateLimitScope } from "../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../gen/jobs/v1/queue_service_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { Code, failure } from "./support/errors.js";
import { type ServiceProcess, startReplica } from "./support/process.js";
import { tokens } from "./support/service.js";

const db = testDatabase();
const processes: ServiceProcess[] = [];
afterAll(async () => {
  await Promise.all(processes.map((p) => p.stop("SIGKILL")));
  await db.drop();
});

const replica = () => startReplica(db, processes);

/** Calls ListQueues as fast as `concurrency` callers can for `ms`; counts accepted and refused calls. */
async function hammer(baseUrl: string, token: string, ms: number, concurrency = 4) {
  const queues = client(QueueService, baseUrl, { protocol: "grpc", token });
  let accepted = 0;
  const refused: ConnectError[] = [];
  const until = Date.now() + ms;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (Date.now() < until) {
        try {
          await queues.listQueues({});
          accepted += 1;
        } catch (err) {
          refused.push(ConnectError.from(err));
          await new Promise((r) => setTimeout(r, 5));
        }
      }
    }),
  );
  return { accepted, refused };
}

describe("API rate limit", () => {
  it("is held by two replicas together, with RetryInfo on refusals, and spares other principals", async () => {
    const a = await replica();
    const b = await replica();
    // Each replica counts the live replicas on its heartbeat (every 5 s).
    await new Promise((r) => setTimeout(r, 6000));
    const monitoring = client(MonitoringService, a.baseUrl, { protocol: "grpc", token: tokens.admin });
    const limit = 10;
    await monitoring.setRateLimit({ rateLimit: { scope: RateLimitScope.API_PRINCIPAL, key: "svc-a", limit, interval: durationFromMs(1000) } });
    await new Promise((r) => setTimeout(r, 500));

    const seconds = 4;
    const [onA, onB, other] = await Promise.all([
      hammer(a.baseUrl, tokens.serviceA, seconds * 1000),
      hammer(b.baseUrl, tokens.serviceA, seconds * 1000),
      // Four callers, so that even on a loaded machine it makes more calls than the limit would allow.
      hammer(a.baseUrl, tokens.serviceB, seconds * 1000),
    ]);
    const accepted = onA.accepted + onB.accepted;
    // A full bucket (the burst) plus the refill over the window; each replica holds half.
    expect(accepted).toBeLessThanOrEqual(limit + limit * seconds + 2);
    expect(accepted).toBeGreaterThanOrEqual(limit * seconds * 0.8);
    expect(onA.accepted).toBeGreaterThan(0);
    expect(onB.accepted).toBeGreaterThan(0);

    const refusals = [...onA.refused, ...onB.refused];
    expect(refusals.length).toBeGreaterThan(0);
    for (const err of refusals) {
      expect(err.code).toBe(Code.ResourceExhausted);
      expect(err.rawMessage).toMatch(/svc-a is over its API rate limit of 10 calls per 1 s/);
      const delay = err.findDetails(RetryInfoSchema)[0]?.retryDelay;
      expect(delay).toBeDefined();
      const ms = Number(delay!.seconds) * 1000 + delay!.nanos / 1e6;
      expect(ms).toBeGreaterThan(0);
      expect(ms).toBeLessThanOrEqual(1000);
    }
    expect(other.refused).toEqual([]);
    expect(other.accepted).toBeGreaterThan(limit * seconds);

    // Deleting the limit lifts it on both replicas.
    await monitoring.deleteRateLimit({ scope: RateLimitScope.API_PRINCIPAL, key: "svc-a" });
    await new Promise((r) => setTimeout(r, 500));
    const after = await Promise.all([hammer(a.baseUrl, tokens.serviceA, 1000, 2), hammer(b.baseUrl, tokens.serviceA, 1000, 2)]);
    expect(after.flatMap((h) => h.refused)).toEqual([]);
    expect(after[0].accepted + after[1].accepted).toBeGreaterThan(2 * limit);
  }, 60_000);

  it("is refused for an invalid principal name", async () => {
    const a = processes[0]!;
    const monitoring = client(MonitoringService, a.baseUrl, { protocol: "grpc", token: tokens.admin });
    const err = await failure(
      monitoring.setRateLimit({ rateLimit: { scope: RateLimitScope.API_PRINCIPAL, key: "svc a!", limit: 1, interval: durationFromMs(1000) } }),
    );
    expect(err.code).toBe(Code.InvalidArgument);
  });
});
