/**
 * The service as a process: it starts, serves, and exits 0 within 10 s of SIGTERM; a bad setting
 * stops the start with a message naming it; an unreachable database keeps it NOT_SERVING (and
 * stoppable) rather than crashing it.
 */
import { afterAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../gen/health/v1/health_pb.js";
import { client } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { freePort, spawnService, waitForHttp } from "./support/process.js";
import { testEnv } from "./support/service.js";
import { eventually } from "./support/wait.js";

const db = testDatabase();
afterAll(() => db.drop());

describe("service process", () => {
  it("serves and exits 0 within 10 s of SIGTERM", async () => {
    const port = await freePort();
    const proc = spawnService(testEnv(db, { PORT: String(port) }));
    try {
      await waitForHttp(`${proc.baseUrl}/readyz`, (s) => s === 200);
      const health = client(Health, proc.baseUrl, { protocol: "grpc" });
      expect((await health.check({})).status).toBe(Serving.SERVING);
    } finally {
      const { code, ms } = await proc.stop("SIGTERM");
      expect(code, proc.output()).toBe(0);
      expect(ms).toBeLessThan(10_000);
    }
    expect(proc.output()).toContain('"msg":"stopped"');
  });

  it("writes readable lines with LOG_FORMAT=pretty (what a terminal gets by default), JSON otherwise", async () => {
    const port = await freePort();
    const proc = spawnService(testEnv(db, { PORT: String(port), LOG_FORMAT: "pretty" }));
    try {
      await waitForHttp(`${proc.baseUrl}/readyz`, (s) => s === 200);
      await eventually(async () => /INFO.*ready/.test(proc.output()), "the ready line");
    } finally {
      expect((await proc.stop("SIGTERM")).code, proc.output()).toBe(0);
    }
    expect(proc.output()).not.toContain('"msg":"ready"');
    expect(proc.output()).toMatch(/^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: ready/m);
  });

  it("refuses a bad setting with a message naming it", async () => {
    const proc = spawnService(testEnv(db, { PORT: "not-a-port" }));
    expect(await proc.exited).toBe(2);
    expect(proc.output()).toMatch(/PORT: must be an integer from 0 to 65535/);
  });

  it("stays NOT_SERVING while the database is unreachable, and stops cleanly", async () => {
    const port = await freePort();
    const nowhere = await freePort();
    const proc = spawnService(testEnv(db, { PORT: String(port), DATABASE_URL: `postgres://postgres@127.0.0.1:${nowhere}/none` }));
    try {
      expect(await waitForHttp(`${proc.baseUrl}/readyz`, (s) => s === 503)).toBe(503);
      const health = client(Health, proc.baseUrl, { protocol: "grpc" });
      expect((await health.check({})).status).toBe(Serving.NOT_SERVING);
      await new Promise((r) => setTimeout(r, 1500));
      expect(proc.child.exitCode).toBeNull();
    } finally {
      const { code } = await proc.stop("SIGTERM");
      expect(code, proc.output()).toBe(0);
    }
    expect(proc.output()).toMatch(/database unreachable; retrying/);
  });
});
