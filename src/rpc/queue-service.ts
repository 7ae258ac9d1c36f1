/**
 * jobs.v1.QueueService handlers.
 */
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { QueueService } from "../../gen/jobs/v1/queue_service_pb.js";
import type { Engine } from "../engine/engine.js";
import { ValidationError } from "../engine/errors.js";
import type { JobRegistry, QueueDefinition } from "../engine/registry.js";
import { toJob } from "./job-mapper.js";
import { pageSizeOf, requireUuid, viewerOf } from "./job-service.js";

export interface QueueServiceDeps {
  engine: () => Engine;
  registry: JobRegistry;
}

/** Most dead letters one redrive moves. */
export const MAX_REDRIVE = 1000;

/** The queue named by a request field, or INVALID_ARGUMENT. */
export function requireQueue(registry: JobRegistry, name: string, field = "queue"): QueueDefinition {
  if (!name) throw new ValidationError([{ field, description: "is required", reason: "REQUIRED" }]);
  const queue = registry.queue(name);
  if (!queue) throw new ValidationError([{ field, description: `is not a queue (one of: ${registry.queues.map((q) => q.name).join(", ")})`, reason: "UNKNOWN_QUEUE" }]);
  return queue;
}

/** The QueueService implementation. */
export function queueService(deps: QueueServiceDeps): Partial<ServiceImpl<typeof QueueService>> {
  const { engine, registry } = deps;
  return {
    async listDeadLetters(req, ctx) {
      const queue = requireQueue(registry, req.queue);
      const page = await engine().deadLetters.list(viewerOf(ctx), queue, pageSizeOf(req.pageSize), req.pageToken || undefined);
      return { jobs: page.records.map(toJob), nextPageToken: page.nextPageToken };
    },

    async redriveDeadLetters(req) {
      const queue = requireQueue(registry, req.queue);
      if (req.jobIds.length > MAX_REDRIVE) throw new ValidationError([{ field: "job_ids", description: `must list at most ${MAX_REDRIVE} ids`, reason: "OUT_OF_RANGE" }]);
      const ids = req.jobIds.map((id, i) => requireUuid(id, `job_ids[${i}]`));
      if (ids.length > 0 && req.limit !== 0) throw new ValidationError([{ field: "limit", description: "must be unset when job_ids are given", reason: "INVALID_VALUE" }]);
      const limit = pageSizeOf(req.limit, "limit", 100, MAX_REDRIVE);
      const records = await engine().deadLetters.redrive(queue, ids.length > 0 ? ids : undefined, limit);
      return { redrivenCount: records.length, jobs: records.map(toJob) };
    },
  };
}

/** Registers QueueService. */
export function registerQueueService(router: ConnectRouter, deps: QueueServiceDeps): void {
  router.service(QueueService, queueService(deps));
}
