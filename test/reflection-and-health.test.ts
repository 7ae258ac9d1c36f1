/**
 * gRPC reflection lets `buf curl` list and call every RPC without a schema; grpc.health.v1 reports
 * SERVING once the database and the engine are up; both need no token.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Serving } from "../gen/health/v1/health_pb.js";
import { apiServices } from "../src/server/routes.js";
import { client, transport } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

const run = promisify(execFile);
const db = testDatabase();
let svc: TestService;

beforeAll(async () => {
  svc = await startTestService(db, { MAX_HEALTH_WATCHES: "2" });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

const bufCurl = (...args: string[]) =>
  run("npx", ["--no-install", "buf", "curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: 30_000 });

describe("reflection", () => {
  it("lets buf curl list every RPC of the contract", async () => {
    const { stdout } = await bufCurl("--list-methods", svc.baseUrl);
    const listed = stdout.trim().split("\n");
    const expected = apiServices.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`));
    expect(expected.length).toBe(46);
    expect(listed).toEqual(expect.arrayContaining(expected));
    expect(listed).toEqual(expect.arrayContaining(["grpc.health.v1.Health/Check", "grpc.reflection.v1.ServerReflection/ServerReflectionInfo"]));
  });

  it("lets buf curl call an RPC with no local schema", async () => {
    const { stdout } = await bufCurl("-d", "{}", `${svc.baseUrl}/jobs.v1.MonitoringService/GetHealth`);
    expect(JSON.parse(stdout)).toMatchObject({ status: "HEALTH_STATUS_HEALTHY" });
  });

  it("answers buf curl without a token on an authenticated RPC with UNAUTHENTICATED", async () => {
    const err = await bufCurl("-d", "{}", `${svc.baseUrl}/jobs.v1.QueueService/ListQueues`).then(
      () => undefined,
      (e: { stderr: string }) => e.stderr,
    );
    expect(err).toMatch(/unauthenticated/);
  });

  it("serves v1alpha for older tools", async () => {
    const c = createClient(reflectionV1alpha.ServerReflection, transport(svc.baseUrl, { protocol: "grpc" }));
    async function* requests() {
      yield create(reflectionV1alpha.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
      yield create(reflectionV1alpha.ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "jobs.v1.JobService" } });
      yield create(reflectionV1alpha.ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "no.such.Symbol" } });
    }
    const answers = [];
    for await (const res of c.serverReflectionInfo(requests())) answers.push(res);
    expect(answers).toHaveLength(3);
    const [list, file, missing] = answers;
    expect(list!.messageResponse.case).toBe("listServicesResponse");
    expect(file!.messageResponse.case).toBe("fileDescriptorResponse");
    // job_service.proto plus its imports (job.proto, struct, timestamp, duration).
    expect((file!.messageResponse.value as { fileDescriptorProto: Uint8Array[] }).fileDescriptorProto.length).toBeGreaterThanOrEqual(4);
    expect(missing!.messageResponse.case).toBe("errorResponse");
  });
});

describe("grpc.health.v1", () => {
  it("reports SERVING for the server and each service, without a token", async () => {
    const health = client(Health, svc.baseUrl, { protocol: "grpc" });
    expect((await health.check({ service: "" })).status).toBe(Serving.SERVING);
    expect((await health.check({ service: "jobs.v1.JobService" })).status).toBe(Serving.SERVING);
    const err = await health.check({ service: "nope" }).catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.NotFound);
    const listed = await health.list({});
    expect(Object.keys(listed.statuses)).toEqual(expect.arrayContaining(["", "jobs.v1.QueueService"]));
  });

  it("streams the status on Watch and caps open watches", async () => {
    const health = client(Health, svc.baseUrl, { protocol: "grpc", token: tokens.serviceA });
    const controllers = [new AbortController(), new AbortController()];
    const streams = controllers.map((c) => health.watch({ service: "" }, { signal: c.signal })[Symbol.asyncIterator]());
    for (const s of streams) expect((await s.next()).value?.status).toBe(Serving.SERVING);
    const third = health.watch({ service: "" })[Symbol.asyncIterator]();
    const err = await third.next().catch((e: unknown) => ConnectError.from(e));
    expect((err as ConnectError).code).toBe(Code.ResourceExhausted);
    for (const c of controllers) c.abort();
    await Promise.all(streams.map((s) => s.next().catch(() => undefined)));
  });
});
