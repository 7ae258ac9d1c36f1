/**
 * A plain @grpc/grpc-js client built with @grpc/proto-loader from proto/, as another service without
 * Connect would build it. Struct fields arrive as `{fields: {...}}` and Timestamps as `{seconds, nanos}`.
 */

import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

const protoRoot = fileURLToPath(new URL("../../proto/", import.meta.url));

/** Loads jobs.v1 for grpc-js. */
export function loadJobsPackage(): grpc.GrpcObject {
  const definition = protoLoader.loadSync(["jobs/v1/job_service.proto", "jobs/v1/queue_service.proto", "jobs/v1/monitoring_service.proto"], {
    includeDirs: [protoRoot],
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition);
}

type ServiceCtor = new (address: string, credentials: grpc.ChannelCredentials) => grpc.Client & Record<string, any>;

/** A grpc-js client of a jobs.v1 service at `host:port`. */
export function grpcJsClient(service: "JobService" | "QueueService" | "MonitoringService", address: string): grpc.Client & Record<string, any> {
  const pkg = loadJobsPackage() as unknown as { jobs: { v1: Record<string, ServiceCtor> } };
  return new pkg.jobs.v1[service]!(address, grpc.credentials.createInsecure());
}

/** Metadata with a bearer token. */
export function bearerMetadata(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${token}`);
  return md;
}

/** Calls a unary grpc-js method as a promise. */
export function unary<T>(c: grpc.Client & Record<string, any>, method: string, request: unknown, metadata = new grpc.Metadata()): Promise<T> {
  return new Promise((resolve, reject) => {
    c[method]!(request, metadata, (err: grpc.ServiceError | null, res: T) => (err ? reject(err) : resolve(res)));
  });
}
