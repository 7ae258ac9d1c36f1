/**
 * One port serves Connect, gRPC and gRPC-Web over HTTP/2 cleartext and HTTP/1.1, plus plain HTTP
 * routes, and survives garbage and silent connections.
 */

import http2 from "node:http2";
import { connect as netConnect } from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HealthStatus, MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { client, protocolMatrix } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { bearerMetadata, grpcJsClient, unary } from "./support/grpc-js.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

const db = testDatabase();
let svc: TestService;

beforeAll(async () => {
  svc = await startTestService(db, { FIRST_BYTE_TIMEOUT_MS: "500", HTTP2_IDLE_TIMEOUT_MS: "1000" });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

describe("one port", () => {
  it.each(protocolMatrix)("serves $protocol over HTTP/$httpVersion", async ({ protocol, httpVersion }) => {
    const monitoring = client(MonitoringService, svc.baseUrl, { protocol, httpVersion });
    const res = await monitoring.getHealth({});
    expect(res.status).toBe(HealthStatus.HEALTHY);
    expect(res.components.map((c) => c.name)).toEqual(expect.arrayContaining(["database", "engine"]));
  });

  it("serves the Connect protocol with JSON over HTTP/1.1", async () => {
    const res = await fetch(`${svc.baseUrl}/jobs.v1.MonitoringService/GetHealth`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: "HEALTH_STATUS_HEALTHY" });
  });

  it("serves a plain @grpc/grpc-js client", async () => {
    const c = grpcJsClient("MonitoringService", `127.0.0.1:${svc.service.port}`);
    try {
      const res = await unary<{ status: string }>(c, "getHealth", {}, bearerMetadata(tokens.admin));
      expect(res.status).toBe("HEALTH_STATUS_HEALTHY");
    } finally {
      c.close();
    }
  });

  it("reports an unknown RPC as UNIMPLEMENTED over gRPC", async () => {
    const session = http2.connect(svc.baseUrl);
    try {
      const stream = session.request({ ":method": "POST", ":path": "/jobs.v1.NoSuchService/Nope", "content-type": "application/grpc", te: "trailers" });
      stream.end(Buffer.from([0, 0, 0, 0, 0]));
      const status = await new Promise<string | undefined>((resolve) => {
        stream.on("response", (headers) => {
          if (headers["grpc-status"]) resolve(String(headers["grpc-status"]));
        });
        stream.on("trailers", (trailers) => resolve(String(trailers["grpc-status"])));
        stream.resume();
      });
      expect(status).toBe(String(Code.Unimplemented));
    } finally {
      session.close();
    }
  });

  it("answers /healthz and /readyz, and 404 elsewhere", async () => {
    expect((await fetch(`${svc.baseUrl}/healthz`)).status).toBe(200);
    const ready = await fetch(`${svc.baseUrl}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready" });
    expect((await fetch(`${svc.baseUrl}/nothing-here`)).status).toBe(404);
  });

  it("answers garbage bytes with 400 and keeps serving", async () => {
    const reply = await new Promise<string>((resolve) => {
      const socket = netConnect(svc.service.port, "127.0.0.1", () => socket.write("\x00\x01\x02garbage\r\n\r\n"));
      let data = "";
      socket.on("data", (d) => (data += d.toString()));
      socket.on("close", () => resolve(data));
      socket.on("error", () => resolve(data));
    });
    expect(reply).toMatch(/^HTTP\/1\.1 400/);
    const res = await client(MonitoringService, svc.baseUrl).getHealth({});
    expect(res.status).toBe(HealthStatus.HEALTHY);
  });

  it("closes a connection that sends nothing within the first-bytes timeout", async () => {
    const started = Date.now();
    await new Promise<void>((resolve) => {
      const socket = netConnect(svc.service.port, "127.0.0.1");
      socket.on("close", () => resolve());
      socket.on("error", () => {});
    });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(5000);
  });

  it("closes an HTTP/2 connection that opens no stream within the first-bytes timeout", async () => {
    await new Promise<void>((resolve) => {
      const socket = netConnect(svc.service.port, "127.0.0.1", () => socket.write("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
      socket.resume(); // read the server's SETTINGS so that its close is seen
      socket.on("close", () => resolve());
      socket.on("error", () => {});
    });
  });

  it("closes an idle HTTP/2 connection gracefully, but not one with a quiet stream open", async () => {
    const closed = (session: http2.ClientHttp2Session) => new Promise<number>((resolve) => session.once("close", () => resolve(Date.now())));
    // Idle after one request: GOAWAY and close about a second later.
    const idle = http2.connect(svc.baseUrl);
    idle.on("error", () => {});
    const idleClosed = closed(idle);
    await new Promise<void>((resolve, reject) =>
      idle
        .request({ ":path": "/healthz" })
        .on("response", () => resolve())
        .on("error", reject)
        .resume(),
    );
    const answeredAt = Date.now();
    const goaway = new Promise<void>((resolve) => idle.once("goaway", () => resolve()));
    expect((await idleClosed) - answeredAt).toBeGreaterThanOrEqual(900);
    await goaway;

    // A health watch stays open with nothing to say: its connection is kept until the stream ends.
    const watching = http2.connect(svc.baseUrl);
    watching.on("error", () => {});
    const watchingClosed = closed(watching);
    let closedEarly = false;
    void watchingClosed.then(() => (closedEarly = true));
    const watch = watching.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc", te: "trailers" });
    watch.on("error", () => {});
    const firstMessage = new Promise<void>((resolve) => watch.once("data", () => resolve()));
    watch.end(Buffer.from([0, 0, 0, 0, 0])); // one empty HealthCheckRequest
    await firstMessage;
    await new Promise((r) => setTimeout(r, 2500));
    expect(closedEarly).toBe(false);
    const endedAt = Date.now();
    watch.close();
    expect((await watchingClosed) - endedAt).toBeGreaterThanOrEqual(900);
  });

  it("rejects a message over the transport limit with RESOURCE_EXHAUSTED", async () => {
    const monitoring = client(MonitoringService, svc.baseUrl, { protocol: "grpc", token: tokens.admin });
    const err = await monitoring.getMetrics({ queue: "x".repeat(svc.config.maxMessageBytes + 10) }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.ResourceExhausted);
  });
});

describe("connection cap", () => {
  /** GET /healthz on its own HTTP/2 connection, left open: resolves with the session once answered. */
  const openConnection = (baseUrl: string) =>
    new Promise<http2.ClientHttp2Session>((resolve, reject) => {
      const session = http2.connect(baseUrl);
      session.on("error", reject);
      session.on("close", () => reject(new Error("the connection was closed before an answer")));
      const req = session.request({ ":path": "/healthz" });
      req.on("error", reject);
      req.on("response", (headers) => {
        if (headers[":status"] !== 200) reject(new Error(`status ${headers[":status"]}`));
        req.resume();
        req.on("end", () => resolve(session));
      });
      req.end();
    });

  it("closes a connection over MAX_CONNECTIONS as it arrives, and serves again once one is closed", async () => {
    const capped = await startTestService(db, { MAX_CONNECTIONS: "3" });
    const open: http2.ClientHttp2Session[] = [];
    try {
      for (let i = 0; i < 3; i++) open.push(await openConnection(capped.baseUrl));
      await expect(openConnection(capped.baseUrl)).rejects.toThrow();
      // The three held ones still serve.
      for (const s of open) {
        const status = await new Promise((resolve, reject) => {
          const req = s.request({ ":path": "/healthz" });
          req.on("response", (h) => resolve(h[":status"]));
          req.on("error", reject);
          req.resume();
          req.end();
        });
        expect(status).toBe(200);
      }
      // One closed: a new connection is served (once the server has seen the close).
      await new Promise<void>((resolve) => open.shift()!.close(resolve));
      let next: http2.ClientHttp2Session | undefined;
      for (let tries = 0; !next && tries < 50; tries++) {
        next = await openConnection(capped.baseUrl).catch(() => undefined);
        if (!next) await new Promise((r) => setTimeout(r, 100));
      }
      expect(next).toBeDefined();
      open.push(next!);
    } finally {
      for (const s of open) s.destroy();
      await capped.stop();
    }
  });
});
