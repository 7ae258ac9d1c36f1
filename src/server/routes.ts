/**
 * Every service on the one port: the jobs.v1 API, gRPC health and reflection.
 */
import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { Health } from "../../gen/health/v1/health_pb.js";
import { JobService } from "../../gen/jobs/v1/job_service_pb.js";
import { MonitoringService } from "../../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../../gen/jobs/v1/queue_service_pb.js";
import { ScheduleService } from "../../gen/jobs/v1/schedule_service_pb.js";
import { WorkerService } from "../../gen/jobs/v1/worker_service_pb.js";
import type { Engine } from "../engine/engine.js";
import type { JobRegistry } from "../engine/registry.js";
import type { HealthMonitor } from "../health.js";
import { registerJobService } from "../rpc/job-service.js";
import { registerMonitoringService } from "../rpc/monitoring-service.js";
import { registerQueueService } from "../rpc/queue-service.js";
import { registerScheduleService } from "../rpc/schedule-service.js";
import type { StreamLimits } from "../rpc/stream-limits.js";
import { registerWorkerService } from "../rpc/worker-service.js";
import type { Instruments } from "../telemetry/instruments.js";
import { registerGrpcHealth } from "./grpc-health.js";
import { registerReflection } from "./reflection.js";

/** The API's services. */
export const apiServices: readonly DescService[] = [JobService, QueueService, MonitoringService, WorkerService, ScheduleService];

export interface RouteDeps {
  health: HealthMonitor;
  maxHealthWatches: number;
  registry: JobRegistry;
  /** The engine; throws UNAVAILABLE until it has started (the readiness interceptor answers first). */
  engine: () => Engine;
  maxPayloadBytes: number;
  eventRetentionSeconds: number;
  concurrency: (queue: string) => number;
  streams: StreamLimits;
  maxStreamBytes: number;
  instruments?: Instruments;
}

/** Builds the routes function for the Connect adapter. */
export function routes(deps: RouteDeps): (router: ConnectRouter) => void {
  return (router) => {
    registerJobService(router, {
      engine: deps.engine,
      registry: deps.registry,
      maxPayloadBytes: deps.maxPayloadBytes,
      eventRetentionSeconds: deps.eventRetentionSeconds,
      limits: deps.streams,
      maxStreamBytes: deps.maxStreamBytes,
      instruments: deps.instruments,
    });
    registerQueueService(router, { engine: deps.engine, registry: deps.registry, concurrency: deps.concurrency });
    registerWorkerService(router, { engine: deps.engine, maxResultBytes: deps.maxPayloadBytes });
    registerScheduleService(router, {
      engine: deps.engine,
      registry: deps.registry,
      maxPayloadBytes: deps.maxPayloadBytes,
      eventRetentionSeconds: deps.eventRetentionSeconds,
    });
    registerMonitoringService(router, {
      health: deps.health,
      engine: deps.engine,
      registry: deps.registry,
      limits: deps.streams,
      maxStreamBytes: deps.maxStreamBytes,
    });
    registerGrpcHealth(router, { health: deps.health, services: apiServices.map((s) => s.typeName), maxWatches: deps.maxHealthWatches });
    registerReflection(router, [...apiServices, Health]);
  };
}
