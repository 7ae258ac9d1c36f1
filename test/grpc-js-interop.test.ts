/**
 * A plain @grpc/grpc-js client (proto-loader on proto/), as a service without Connect would write it:
 * AddJob with a Struct payload, the WatchJob stream to its end, and errors with their google.rpc
 * details from `grpc-status-details-bin`. The README's "Plain gRPC" section shows the same code.
 */

import { fileURLToPath } from "node:url";
import { fromBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BadRequestSchema } from "../gen/google/rpc/error_details_pb.js";
import { StatusSchema } from "../gen/google/rpc/status_pb.js";
import { testDatabase } from "./support/database.js";
import { startTestService, type TestService, tokens } from "./support/service.js";

const db = testDatabase();
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200" });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

type GrpcClient = grpc.Client & Record<string, any>;

function jobServiceClient(address: string): GrpcClient {
  const definition = protoLoader.loadSync("jobs/v1/job_service.proto", {
    includeDirs: [fileURLToPath(new URL("../proto/", import.meta.url))],
    longs: Number, // int64 as numbers
    enums: String, // enums by name: "JOB_STATE_COMPLETED"
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as any;
  return new pkg.jobs.v1.JobService(address, grpc.credentials.createInsecure());
}

/** google.protobuf.Struct as grpc-js sends it: every value wrapped in its kind. */
function struct(obj: Record<string, string | number>): unknown {
  return { fields: Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, typeof v === "number" ? { numberValue: v } : { stringValue: v }])) };
}

describe("@grpc/grpc-js", () => {
  it("adds a payment and reads its WatchJob stream to the end", async () => {
    const jobs = jobServiceClient(`127.0.0.1:${svc.service.port}`);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${tokens.serviceA}`);
    try {
      const payload = struct({ paymentId: "pay_g1", orderId: "ord_g1", customerId: "cus_g1", amount: 1299, currency: "USD", paymentMethod: "tok_visa" });
      const added = await new Promise<any>((resolve, reject) =>
        // Delayed a second, so that the watch below opens before the job runs.
        jobs.addJob(
          { type: "payment:process", payload, options: { idempotencyKey: "grpc-js-ord_g1", delay: { seconds: 1 } } },
          metadata,
          (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res)),
        ),
      );
      expect(added.job.payload.fields.amount).toEqual({ numberValue: 1299, kind: "numberValue" });
      expect(added.job.createdAt.seconds).toBeGreaterThan(1_700_000_000);

      const events: { type: string; state: string; at: number }[] = [];
      const status = await new Promise<grpc.StatusObject>((resolve, reject) => {
        const stream = jobs.watchJob({ id: added.job.id }, metadata);
        stream.on("data", (res: any) => events.push({ type: res.event.type, state: res.event.job.state, at: res.event.occurredAt.seconds }));
        stream.on("status", resolve);
        stream.on("error", reject);
      });
      expect(status.code).toBe(grpc.status.OK);
      expect(events[0]).toMatchObject({ type: "JOB_EVENT_TYPE_SNAPSHOT", state: "JOB_STATE_CREATED" });
      expect(events.at(-1)).toMatchObject({ type: "JOB_EVENT_TYPE_COMPLETED", state: "JOB_STATE_COMPLETED" });
      expect(events.every((e) => e.at > 1_700_000_000)).toBe(true);
    } finally {
      jobs.close();
    }
  });

  it("gets INVALID_ARGUMENT with the field violations in grpc-status-details-bin", async () => {
    const jobs = jobServiceClient(`127.0.0.1:${svc.service.port}`);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${tokens.serviceA}`);
    try {
      const err = await new Promise<grpc.ServiceError>((resolve) =>
        jobs.addJob({ type: "payment:process", payload: struct({ paymentId: "pay_g2", amount: 0 }) }, metadata, (e: grpc.ServiceError | null) => resolve(e!)),
      );
      expect(err.code).toBe(grpc.status.INVALID_ARGUMENT);
      const [bin] = err.metadata.get("grpc-status-details-bin") as Buffer[];
      const status = fromBinary(StatusSchema, bin!);
      const badRequest = status.details.find((d) => d.typeUrl.endsWith("google.rpc.BadRequest"))!;
      const fields = fromBinary(BadRequestSchema, badRequest.value).fieldViolations.map((v) => v.field);
      expect(fields).toEqual(expect.arrayContaining(["payload.orderId", "payload.amount", "payload.currency"]));
    } finally {
      jobs.close();
    }
  });
});
