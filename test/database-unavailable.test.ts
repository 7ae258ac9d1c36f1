/**
 * While the database refuses connections, RPCs answer UNAVAILABLE (never UNKNOWN or INTERNAL), health
 * reports the database unhealthy, and the service recovers by itself once the database is back.
 */
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { HealthStatus, MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { client } from "./support/clients.js";
import { type TestDatabase, testDatabase } from "./support/database.js";
import { Code, failure } from "./support/errors.js";
import { email } from "./support/payloads.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

const server = testDatabase();
const name = `qs_unavailable_${randomBytes(4).toString("hex")}`;
let own: TestDatabase;
let svc: TestService;

beforeAll(async () => {
  await server.query(`CREATE DATABASE ${name}`);
  const url = new URL(server.url);
  url.pathname = `/${name}`;
  own = { ...server, url: url.toString() };
  svc = await startTestService(own);
});
afterAll(async () => {
  await server.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`).catch(() => {});
  await svc?.stop();
  await server.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
});

async function eventually(check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("database unavailable", () => {
  it("answers UNAVAILABLE, reports it in health, and recovers", async () => {
    const jobs = client(JobService, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const monitoring = client(MonitoringService, svc.baseUrl, { protocol: "grpc" });
    await jobs.addJob({ type: "email:send", payload: email() });

    await server.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
    await server.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, [name]);

    const err = await failure(jobs.addJob({ type: "email:send", payload: email() }));
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toMatch(/database/);
    expect((await failure(jobs.listJobs({}))).code).toBe(Code.Unavailable);
    await eventually(async () => (await monitoring.getHealth({})).components.find((c) => c.name === "database")?.status === HealthStatus.UNHEALTHY);

    await server.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
    await eventually(async () => (await monitoring.getHealth({})).status === HealthStatus.HEALTHY);
    const { job } = await jobs.addJob({ type: "email:send", payload: email() });
    expect(job!.id).toBeTruthy();
  });
});
