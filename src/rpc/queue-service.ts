/**
 * jobs.v1.QueueService handlers.
 */

import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { QueueService } from "../../gen/jobs/v1/queue_service_pb.js";
import type { EngineApi, JobRegistry, PauseRow, QueueDefinition, RegisteredJobType } from "../engine/index.js";
import { NotFoundError, ValidationError } from "../engine/index.js";
import { principalOf } from "./call-context.js";
import { jobTypeToRegister, jobTypeToUpdate, queueToCreate, queueToUpdate } from "./catalog-requests.js";
import { toJob } from "./job-mapper.js";
import { toJobType, toQueue, toQueueStats } from "./queue-mapper.js";
import { DEFAULT_STATS_WINDOW_SECONDS, pageSizeOf, requireQueue, requireUuid, viewerOf, windowSecondsOf } from "./request-fields.js";

export interface QueueServiceDeps {
  engine: () => EngineApi;
  registry: JobRegistry;
  /** Jobs of a queue one replica runs at once. */
  concurrency: (queue: string) => number;
}

/** Most dead letters one redrive moves. */
export const MAX_REDRIVE = 1000;

/** The QueueService implementation. */
export function queueService(deps: QueueServiceDeps): Partial<ServiceImpl<typeof QueueService>> {
  const { engine, registry } = deps;
  // The answer of a pause or resume: the pause as its own transaction left it.
  const queueOf = async (queue: QueueDefinition, pause: PauseRow | undefined) => {
    const stats = (await engine().queues.stats(DEFAULT_STATS_WINDOW_SECONDS)).find((s) => s.queue === queue.name);
    return toQueue(queue, registry, deps.concurrency(queue.name), pause, stats);
  };
  return {
    async listQueues(req) {
      const e = engine();
      const pageSize = pageSizeOf(req.pageSize, "page_size", 100, 100);
      const after = req.pageToken ? e.pageTokens.verify<{ n: string }>("queues", {}, req.pageToken).n : undefined;
      const names = registry.queues
        .map((q) => q.name)
        .sort()
        .filter((n) => after === undefined || n > after);
      const page = names.slice(0, pageSize);
      const stats = await e.queues.stats(DEFAULT_STATS_WINDOW_SECONDS);
      return {
        queues: page.map((name) =>
          toQueue(
            registry.queue(name)!,
            registry,
            deps.concurrency(name),
            e.queues.paused(name),
            stats.find((s) => s.queue === name),
          ),
        ),
        nextPageToken: names.length > page.length ? e.pageTokens.sign("queues", {}, { n: page[page.length - 1] }) : "",
      };
    },

    async getQueueStats(req) {
      const queue = registry.queue(req.name);
      if (!req.name) throw new ValidationError([{ field: "name", description: "is required", reason: "REQUIRED" }]);
      if (!queue) throw new NotFoundError(`queue ${req.name} not found (queues: ${registry.queues.map((q) => q.name).join(", ")})`);
      const windowSeconds = windowSecondsOf(req.window);
      const stats = (await engine().queues.stats(windowSeconds)).find((s) => s.queue === queue.name)!;
      return { stats: toQueueStats(stats) };
    },

    async pauseQueue(req, ctx) {
      const queue = requireQueue(registry, req.name, "name");
      const pause = await engine().queues.pause(queue.name, principalOf(ctx).name);
      return { queue: await queueOf(queue, pause) };
    },

    async resumeQueue(req) {
      const queue = requireQueue(registry, req.name, "name");
      await engine().queues.resume(queue.name);
      return { queue: await queueOf(queue, undefined) };
    },

    async listDeadLetters(req, ctx) {
      const queue = requireQueue(registry, req.queue);
      const page = await engine().queues.deadLetters.list(viewerOf(ctx), queue, pageSizeOf(req.pageSize), req.pageToken || undefined);
      return { jobs: page.records.map(toJob), nextPageToken: page.nextPageToken };
    },

    async redriveDeadLetters(req) {
      const queue = requireQueue(registry, req.queue);
      if (req.jobIds.length > MAX_REDRIVE)
        throw new ValidationError([{ field: "job_ids", description: `must list at most ${MAX_REDRIVE} ids`, reason: "OUT_OF_RANGE" }]);
      const ids = req.jobIds.map((id, i) => requireUuid(id, `job_ids[${i}]`));
      if (ids.length > 0 && req.limit !== 0)
        throw new ValidationError([{ field: "limit", description: "must be unset when job_ids are given", reason: "INVALID_VALUE" }]);
      // Neither is not "the oldest 100": a request that selects nothing by mistake moves nothing.
      if (ids.length === 0 && req.limit === 0)
        throw new ValidationError([
          { field: "job_ids", description: `give the dead letters' ids, or a limit (1 to ${MAX_REDRIVE}) to redrive the oldest`, reason: "REQUIRED" },
        ]);
      if (req.limit < 0 || req.limit > MAX_REDRIVE)
        throw new ValidationError([{ field: "limit", description: `must be from 1 to ${MAX_REDRIVE}`, reason: "OUT_OF_RANGE" }]);
      const records = await engine().queues.deadLetters.redrive(queue, ids.length > 0 ? ids : undefined, req.limit);
      return { redrivenCount: records.length, jobs: records.map(toJob) };
    },

    async purgeDeadLetters(req) {
      const queue = requireQueue(registry, req.queue);
      if (req.jobIds.length > MAX_REDRIVE)
        throw new ValidationError([{ field: "job_ids", description: `must list at most ${MAX_REDRIVE} ids`, reason: "OUT_OF_RANGE" }]);
      const ids = req.jobIds.map((id, i) => requireUuid(id, `job_ids[${i}]`));
      if (ids.length > 0 && req.before)
        throw new ValidationError([{ field: "before", description: "must be unset when job_ids are given", reason: "INVALID_VALUE" }]);
      if (ids.length === 0 && !req.before)
        throw new ValidationError([
          { field: "job_ids", description: "give the dead letters' ids, or `before` to discard those dead-lettered before then", reason: "REQUIRED" },
        ]);
      if (
        req.before &&
        (req.before.nanos < 0 || req.before.nanos > 999_999_999 || Number(req.before.seconds) < 0 || Number(req.before.seconds) > 253402300799)
      ) {
        throw new ValidationError([{ field: "before", description: "must be a valid timestamp", reason: "INVALID_VALUE" }]);
      }
      const purged = await engine().queues.deadLetters.purge(queue, ids.length > 0 ? ids : undefined, req.before ? timestampDate(req.before) : undefined);
      return { purgedCount: purged };
    },

    async createQueue(req) {
      const queue = await engine().catalog.createQueue(queueToCreate(req.queue));
      return { queue: await queueOf(queue, undefined) };
    },

    async updateQueue(req) {
      if (!req.queue?.name) throw new ValidationError([{ field: "queue.name", description: "is required", reason: "REQUIRED" }]);
      const current = requireQueue(registry, req.queue.name, "queue.name");
      const queue = await engine().catalog.updateQueue(queueToUpdate(current, req.queue, req.updateMask));
      return { queue: await queueOf(queue, engine().queues.paused(queue.name)) };
    },

    async deleteQueue(req) {
      requireQueue(registry, req.name, "name");
      await engine().catalog.deleteQueue(req.name);
      return {};
    },

    async registerJobType(req) {
      return { jobType: toJobType(await engine().catalog.registerType(jobTypeToRegister(req.jobType))) };
    },

    async updateJobType(req) {
      const current = requireJobType(req.jobType?.name ?? "", "job_type.name");
      return { jobType: toJobType(await engine().catalog.updateType(jobTypeToUpdate(current, req.jobType!, req.updateMask))) };
    },

    async deleteJobType(req) {
      requireJobType(req.name, "name");
      await engine().catalog.deleteType(req.name);
      return {};
    },

    async listJobTypes(req) {
      const e = engine();
      const pageSize = pageSizeOf(req.pageSize, "page_size", 100, 100);
      const after = req.pageToken ? e.pageTokens.verify<{ n: string }>("job_types", {}, req.pageToken).n : undefined;
      const types = e.catalog.types().filter((t) => after === undefined || t.type > after);
      const page = types.slice(0, pageSize);
      return {
        jobTypes: page.map(toJobType),
        nextPageToken: types.length > page.length ? e.pageTokens.sign("job_types", {}, { n: page[page.length - 1]!.type }) : "",
      };
    },
  };

  function requireJobType(name: string, field: string): RegisteredJobType {
    if (!name) throw new ValidationError([{ field, description: "is required", reason: "REQUIRED" }]);
    const type = registry.type(name);
    if (!type) throw new NotFoundError(`job type ${name} not found`);
    return type;
  }
}

/** Registers QueueService. */
export function registerQueueService(router: ConnectRouter, deps: QueueServiceDeps): void {
  router.service(QueueService, queueService(deps));
}
