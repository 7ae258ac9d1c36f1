/**
 * CORS for browser clients: preflights and responses carry the headers Connect-Web needs for the
 * allowed origins only; other origins get none (the browser then refuses the page's call).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { testDatabase } from "./support/database.js";
import { startTestService, type TestService, testEnv, tokens } from "./support/service.js";

const db = testDatabase();
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService(db, { CORS_ALLOWED_ORIGINS: "https://app.example.com, http://localhost:5173" });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

const preflight = (origin: string) =>
  fetch(`${svc.baseUrl}/jobs.v1.QueueService/ListQueues`, {
    method: "OPTIONS",
    headers: { origin, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type,connect-protocol-version" },
  });

describe("CORS", () => {
  it("answers a preflight from an allowed origin", async () => {
    const res = await preflight("https://app.example.com");
    expect(res.status).toBe(204);
    expect(res.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(res.headers.get("access-control-allow-methods")).toContain("POST");
    const allowed = res.headers.get("access-control-allow-headers")!.toLowerCase();
    for (const h of ["authorization", "content-type", "connect-protocol-version", "x-grpc-web"]) expect(allowed).toContain(h);
  });

  it("lets an allowed origin read a response, status and error headers included", async () => {
    const res = await fetch(`${svc.baseUrl}/jobs.v1.QueueService/ListQueues`, {
      method: "POST",
      headers: { origin: "http://localhost:5173", "content-type": "application/json", authorization: `Bearer ${tokens.serviceA}` },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("access-control-allow-origin")).toBe("http://localhost:5173");
    expect(res.headers.get("vary")).toContain("Origin");
    expect(res.headers.get("access-control-expose-headers")!.toLowerCase()).toContain("grpc-status");
  });

  it("gives other origins nothing", async () => {
    const res = await preflight("https://evil.example");
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
    const call = await fetch(`${svc.baseUrl}/jobs.v1.QueueService/ListQueues`, {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/json", authorization: `Bearer ${tokens.serviceA}` },
      body: "{}",
    });
    expect(call.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("refuses a malformed origin in configuration", () => {
    expect(() => loadConfig(testEnv(db, { CORS_ALLOWED_ORIGINS: "app.example.com/path" }))).toThrow(/CORS_ALLOWED_ORIGINS: must be origins like/);
  });
});
