/**
 * TLS on the one port (HTTP/2 and HTTP/1.1 chosen by ALPN), and logs that never carry a token.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import http2 from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JobService } from "../gen/jobs/v1/job_service_pb.js";
import { HealthStatus, MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { type Service, startService } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { createLogger } from "../src/logger.js";
import { testDatabase } from "./support/database.js";
import { testEnv, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const db = testDatabase();
const dir = mkdtempSync(join(tmpdir(), "qs-tls-"));
const certFile = join(dir, "cert.pem");
const keyFile = join(dir, "key.pem");
execFileSync(
  "openssl",
  [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    keyFile,
    "-out",
    certFile,
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ],
  { stdio: "ignore" },
);
const ca = readFileSync(certFile);

const lines: string[] = [];
let service: Service;
let baseUrl: string;

beforeAll(async () => {
  const config = loadConfig(testEnv(db, { TLS_CERT_FILE: certFile, TLS_KEY_FILE: keyFile, LOG_LEVEL: "debug" }));
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(...chunk.toString().trim().split("\n"));
      done();
    },
  });
  service = await startService(config, createLogger("debug", sink));
  await service.ready;
  baseUrl = `https://127.0.0.1:${service.port}`;
});
afterAll(async () => {
  await service?.stop();
  await db.drop();
});

const nodeOptions = { ca };

describe("TLS", () => {
  it("serves gRPC over HTTP/2 and Connect over HTTP/1.1 and HTTP/2", async () => {
    const grpc = createClient(MonitoringService, createGrpcTransport({ baseUrl, nodeOptions }));
    expect((await grpc.getHealth({})).status).toBe(HealthStatus.HEALTHY);
    for (const httpVersion of ["1.1", "2"] as const) {
      const c = createClient(MonitoringService, createConnectTransport({ baseUrl, httpVersion, nodeOptions }));
      expect((await c.getHealth({})).status).toBe(HealthStatus.HEALTHY);
    }
  });
});

describe("logs", () => {
  it("carry a request id and never a token", async () => {
    const c = createClient(
      MonitoringService,
      createConnectTransport({
        baseUrl,
        httpVersion: "2",
        nodeOptions,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${tokens.admin}`);
            req.header.set("x-request-id", "req-123");
            return next(req);
          },
        ],
      }),
    );
    await c.getHealth({});
    const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.requestId === "req-123");
    expect(line).toMatchObject({ msg: "rpc", rpc: "jobs.v1.MonitoringService/GetHealth", code: "ok", principal: "admin" });
    expect(lines.join("\n")).not.toContain(tokens.admin);
  });

  it("say a client that hung up a stream canceled it, and log no error for it", async () => {
    const from = lines.length;
    // gRPC reflection (as grpcurl uses it): one request, its answer, then the connection drops.
    const session = http2.connect(baseUrl, { ca });
    const stream = session.request({
      ":method": "POST",
      ":path": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      "content-type": "application/grpc",
      te: "trailers",
    });
    const listServices = Buffer.from([0x3a, 0x01, 0x2a]);
    stream.write(Buffer.concat([Buffer.from([0, 0, 0, 0, listServices.length]), listServices]));
    await new Promise((resolve) => stream.once("data", resolve));
    session.destroy();
    // A watch its client stops.
    const abort = new AbortController();
    const jobs = createClient(
      JobService,
      createGrpcTransport({
        baseUrl,
        nodeOptions,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${tokens.admin}`);
            return next(req);
          },
        ],
      }),
    );
    const watching = (async () => {
      for await (const _ of jobs.watchJobs({}, { signal: abort.signal }));
    })().catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    abort.abort();
    await watching;
    const logged = () => lines.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>);
    await eventually(async () => logged().filter((l) => l.msg === "rpc").length >= 2, "both calls' log lines");
    expect(logged().filter((l) => l.level === "error")).toEqual([]);
    expect(
      logged()
        .filter((l) => l.msg === "rpc")
        .map((l) => [l.rpc, l.code]),
    ).toEqual(
      expect.arrayContaining([
        ["grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "Canceled"],
        ["jobs.v1.JobService/WatchJobs", "Canceled"],
      ]),
    );
  });

  it("redact secrets and personal data by key", () => {
    const captured: string[] = [];
    const logger = createLogger(
      "info",
      new Writable({
        write(chunk, _e, done) {
          captured.push(chunk.toString());
          done();
        },
      }),
    );
    logger.info({ headers: { authorization: "Bearer abc" }, job: { payload: { paymentMethod: "tok_visa", to: "a@b.c" } }, email: "x@y.z" }, "x");
    const text = captured.join("");
    for (const secret of ["Bearer abc", "tok_visa", "a@b.c", "x@y.z"]) expect(text).not.toContain(secret);
    expect(text).toContain("[redacted]");
  });
});
