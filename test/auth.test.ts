/**
 * The auth matrix, for every RPC of the contract: no token and a bad token are UNAUTHENTICATED
 * (except on public RPCs), a service or worker token on an RPC its role does not allow is
 * PERMISSION_DENIED, before any handler runs. The expected roles are written out here from API.md,
 * independently of the server's table.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accessPolicy } from "../src/server/access-policy.js";
import { apiServices } from "../src/server/routes.js";
import { transport } from "./support/clients.js";
import { testDatabase } from "./support/database.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

/** Who may call each RPC (admins may call all): `service+worker` is either. */
const roles: Record<string, "public" | "service" | "worker" | "service+worker" | "admin"> = {
  AddJob: "service",
  AddJobs: "admin",
  GetJob: "service",
  ListJobs: "service",
  RetryJob: "admin",
  CancelJob: "admin",
  WatchJob: "service",
  WatchJobs: "service",
  ListQueues: "service",
  GetQueueStats: "service",
  PauseQueue: "admin",
  ResumeQueue: "admin",
  ListDeadLetters: "service",
  RedriveDeadLetters: "admin",
  PurgeDeadLetters: "admin",
  GetHealth: "public",
  GetMetrics: "service",
  WatchMetrics: "service",
  ListAlertRules: "service",
  CreateAlertRule: "admin",
  UpdateAlertRule: "admin",
  DeleteAlertRule: "admin",
  ListAlerts: "service",
  AcknowledgeAlert: "admin",
  ListRateLimits: "service",
  SetRateLimit: "admin",
  DeleteRateLimit: "admin",
  CreateQueue: "admin",
  UpdateQueue: "admin",
  DeleteQueue: "admin",
  RegisterJobType: "admin",
  UpdateJobType: "admin",
  DeleteJobType: "admin",
  ListJobTypes: "service+worker",
  FetchJobs: "worker",
  HeartbeatJobs: "worker",
  CompleteJob: "worker",
  FailJob: "worker",
  ReportProgress: "worker",
  CreateSchedule: "admin",
  GetSchedule: "service",
  ListSchedules: "service",
  UpdateSchedule: "admin",
  DeleteSchedule: "admin",
  PauseSchedule: "admin",
  ResumeSchedule: "admin",
};
const allows = (role: string, who: "service" | "worker") => role === "public" || role === who || role === "service+worker";

const db = testDatabase();
let svc: TestService;

beforeAll(async () => {
  svc = await startTestService(db);
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

const methods = apiServices.flatMap((service) => service.methods.map((method) => ({ service, method, name: `${service.typeName}/${method.name}` })));

/** Calls `method` with an empty request; resolves to the status code (OK when it answered). */
async function codeOf(method: DescMethod, token: string | undefined): Promise<Code | "ok"> {
  const c = createClient(method.parent, transport(svc.baseUrl, { protocol: "grpc", token })) as unknown as Record<
    string,
    (req: object, opts: object) => unknown
  >;
  const call = c[method.localName]!;
  const signal = AbortSignal.timeout(2000);
  try {
    if (method.methodKind === "server_streaming") {
      for await (const _ of call({}, { signal }) as AsyncIterable<unknown>) break;
    } else {
      await call({}, { signal });
    }
    return "ok";
  } catch (err) {
    return ConnectError.from(err).code;
  }
}

describe("auth matrix", () => {
  it("the roles above cover exactly the RPCs of the contract, and the server's table agrees", () => {
    expect(methods.map((m) => m.method.name).sort()).toEqual(Object.keys(roles).sort());
    for (const m of methods) {
      const role = roles[m.method.name];
      expect(accessPolicy[m.name], m.name).toEqual(role === "service+worker" ? ["service", "worker"] : role);
    }
  });

  describe.each(methods)("$name", ({ method }) => {
    const role = roles[method.name]!;

    it("without a token", async () => {
      const code = await codeOf(method, undefined);
      if (role === "public") expect(code).not.toBe(Code.Unauthenticated);
      else expect(code).toBe(Code.Unauthenticated);
    });

    it("with an unknown token", async () => {
      const code = await codeOf(method, "not-a-real-token-at-all");
      if (role === "public") expect(code).not.toBe(Code.Unauthenticated);
      else expect(code).toBe(Code.Unauthenticated);
    });

    it.each(["service", "worker"] as const)("with a %s token", async (who) => {
      const code = await codeOf(method, who === "service" ? tokens.serviceA : tokens.workerA);
      if (allows(role, who)) expect([Code.Unauthenticated, Code.PermissionDenied]).not.toContain(code);
      else expect(code).toBe(Code.PermissionDenied);
    });

    it("with an admin token (and the RPC is built)", async () => {
      const code = await codeOf(method, tokens.admin);
      expect([Code.Unauthenticated, Code.PermissionDenied, Code.Unimplemented]).not.toContain(code);
    });
  });
});
