/**
 * The job engine: pg-boss plus the service's own tables, behind one object the RPC layer and the
 * workers use. Later parts (job events, enqueue, dispatch, pause, limits) hang off it.
 */
import type { PgBoss } from "pg-boss";
import { migrate } from "../db/migrate.js";
import { createPool, type Pool } from "../db/pool.js";
import { qualified } from "../db/sql.js";
import type { Logger } from "../logger.js";
import { createActivity } from "./activity.js";
import { type AlertEvaluator, startAlertEvaluator } from "./alert-evaluator.js";
import { type Analytics, createAnalytics } from "./analytics.js";
import { type Catalog, startCatalog } from "./catalog.js";
import { startCountFolder } from "./count-folder.js";
import { createDeadLetters, type DeadLetters } from "./dead-letters.js";
import { createEnqueuer, type Enqueuer } from "./enqueue.js";
import { type EnqueueQuota, quotaChecker } from "./enqueue-quota.js";
import { createEventFeed, type EventFeed } from "./event-feed.js";
import { createExternalWork, type ExternalWork } from "./external-work.js";
import { createGroupCommit, type GroupCommit, type GroupCommitOptions } from "./group-commit.js";
import { createJobCommands, type JobCommands } from "./job-commands.js";
import { createJobReader, type JobReader } from "./job-reader.js";
import { createJobWatches, type JobWatches } from "./job-watch.js";
import { createLeaseTokens } from "./lease-token.js";
import { type Listener, startListener } from "./listener.js";
import { type Maintenance, startMaintenance } from "./maintenance.js";
import { createMetrics, type Metrics } from "./metrics.js";
import { createMetricsSampler, type MetricsSampler } from "./metrics-sampler.js";
import { createPageTokens } from "./page-token.js";
import { createProgressWriter, type ProgressWriter } from "./progress.js";
import { activityQueries } from "./queries/activity-queries.js";
import { alertQueries } from "./queries/alert-queries.js";
import { catalogQueries } from "./queries/catalog-queries.js";
import { controlQueries } from "./queries/control-queries.js";
import { idempotencyQueries } from "./queries/idempotency-queries.js";
import { rollupQueries } from "./queries/rollup-queries.js";
import { scheduleQueries } from "./queries/schedule-queries.js";
import { type QueueControl, startQueueControl } from "./queue-control.js";
import { createQueueStats, type QueueStatsReader } from "./queue-stats.js";
import { isLive, type JobRegistry, liveRegistry } from "./registry.js";
import { type Replicas, startReplicas } from "./replicas.js";
import { createSchedules, type Schedules } from "./schedules.js";
import { sharedSecret } from "./secrets.js";
import { applySchedule, LEASE_SECONDS, startBoss } from "./store/boss.js";
import { deadLetterQueries } from "./store/dead-letter-queries.js";
import { dependencyQueries } from "./store/dependency-queries.js";
import { type EventQueries, eventQueries } from "./store/event-queries.js";
import { jobQueries } from "./store/job-queries.js";
import { quotaQueries } from "./store/quota-queries.js";
import { statsQueries } from "./store/stats-queries.js";
import { type WorkQueries, workQueries } from "./store/work-queries.js";
import { alertUseCases, type EngineApi } from "./use-cases.js";
import type { WebhookPolicy } from "./webhooks.js";

export interface EngineOptions {
  url: string;
  schema: string;
  bossSchema: string;
  poolMax: number;
  bossPoolMax: number;
  registry: JobRegistry;
  logger: Logger;
  /** How long an idempotency key is remembered. */
  idempotencyWindowSeconds: number;
  /** How long job events are kept. */
  eventRetentionSeconds: number;
  /** Per-principal enqueue quotas (e.g. email:send per minute). */
  quotas?: EnqueueQuota[];
  /** How single adds (AddJob) share transactions. */
  groupCommit?: GroupCommitOptions;
  /** Alert evaluation. */
  alerts?: { intervalMs: number; webhooks: WebhookPolicy; webhookTimeoutMs: number };
  /**
   * Default schedules (e.g. analytics rollups every minute): created with this cron when missing;
   * ScheduleService owns them after. An empty cron creates none.
   */
  schedules?: { name: string; type: string; cron: string; payload: Record<string, unknown> }[];
  /** Waiting FetchJobs calls allowed on a replica (external workers), in total and per principal. */
  externalWorkers?: { maxWaiting: number; maxWaitingPerPrincipal: number };
  onBossError?: (err: Error) => void;
}

/** The engine's parts: for wiring the workers and health, diagnostics and tests (never the API). */
export interface EngineParts {
  readonly boss: PgBoss;
  readonly pool: Pool;
  readonly schema: string;
  readonly bossSchema: string;
  readonly enqueuer: Enqueuer;
  /** Single adds, grouped with concurrent ones into shared transactions. */
  readonly groupCommit: GroupCommit;
  readonly reader: JobReader;
  readonly commands: JobCommands;
  readonly events: EventQueries;
  readonly deadLetters: DeadLetters;
  readonly work: WorkQueries;
  readonly listener: Listener;
  readonly feed: EventFeed;
  readonly watches: JobWatches;
  readonly control: QueueControl;
  readonly stats: QueueStatsReader;
  readonly analytics: Analytics;
  readonly metrics: Metrics;
  readonly sampler: MetricsSampler;
  readonly evaluator: AlertEvaluator;
  readonly replicas: Replicas;
  readonly maintenance: Maintenance;
  readonly catalog: Catalog;
  readonly schedules: Schedules;
  readonly external: ExternalWork;
  /** Progress of running attempts (external and in-process), coalesced per job. */
  readonly progress: ProgressWriter;
}

/** A started engine: its use cases (the API's), and its parts. */
export interface Engine extends EngineApi {
  readonly registry: JobRegistry;
  readonly parts: EngineParts;
  /** Calls `listener` when a queue resumes (or its limits change): its workers should fetch again. */
  onResume(listener: (queue: string) => void): void;
  /** Drains pg-boss (running jobs get up to `graceMs`) and closes the pools. */
  stop(graceMs: number): Promise<void>;
}

/** Starts pg-boss, applies the service's migrations and opens the service's pool. */
export async function startEngine(options: EngineOptions): Promise<Engine> {
  const { logger } = options;
  const boss = await startBoss({
    url: options.url,
    schema: options.bossSchema,
    poolMax: options.bossPoolMax,
    registry: options.registry,
    logger,
    onError: options.onBossError,
  });
  const pool = createPool({ url: options.url, max: options.poolMax, applicationName: "queue-service", logger });
  let secret: Buffer;
  try {
    await migrate({ url: options.url, schema: options.schema, bossSchema: options.bossSchema, logger });
    // pg-boss creates a partition per queue; each needs the event capture triggers (checked at every
    // start: a pg-boss upgrade may recreate tables).
    const { rows } = await pool.query<{ created: number }>(`SELECT ${qualified(options.schema, "ensure_event_triggers")}() AS created`);
    if (rows[0]!.created > 0) logger.info({ triggers: rows[0]!.created }, "created job event triggers");
    secret = await sharedSecret(pool, options.schema, "page_token");
    for (const schedule of options.schedules ?? []) {
      const type = options.registry.type(schedule.type);
      if (!type) throw new Error(`schedule for unknown job type ${schedule.type}`);
      // Earlier versions ran it on pg-boss's cron: that one is removed (the schedules table runs it now).
      await applySchedule(boss, type, "", {});
    }
  } catch (err) {
    await boss.stop({ graceful: false, close: true }).catch(() => {});
    await pool.end().catch(() => {});
    throw err;
  }
  // The built-in registry, and the catalog's queues and types on top: one live registry every part
  // reads (the caller's own, when it passed a live one: its API layer then sees every change too).
  const registry = isLive(options.registry) ? options.registry : liveRegistry(options.registry);
  const builtIn = { queues: [...registry.queues], types: [...registry.types] };
  const jobs = jobQueries(options.bossSchema);
  const keys = idempotencyQueries(options.schema);
  const pageTokens = createPageTokens(secret);
  const statsStore = statsQueries(options.schema, options.bossSchema);
  const stats = createQueueStats({ pool, registry, queries: statsStore });
  const folder = startCountFolder({ pool, queries: statsStore, logger });
  const analytics = createAnalytics({
    pool,
    registry,
    queries: rollupQueries(options.schema),
    eventRetentionSeconds: options.eventRetentionSeconds,
  });
  const dependencies = dependencyQueries(options.schema, options.bossSchema);
  const reader = createJobReader({ pool, registry, jobs, dependencies, pageTokens });
  const events = eventQueries(options.schema, options.bossSchema);
  const listener = await startListener({ url: options.url, schema: options.schema, logger });
  const catalog = await startCatalog({
    pool,
    boss,
    schema: options.schema,
    queries: catalogQueries(options.schema),
    jobs,
    registry,
    builtIn,
    listener,
    logger,
  });
  // The feed's live reads have a connection of their own: a stream's next event never waits for one
  // of the pool's behind the workers' statements (that wait was most of WatchJob's delay under load).
  const feedPool = createPool({ url: options.url, max: 1, applicationName: "queue-service:feed", logger });
  const feed = createEventFeed({ pool, livePool: feedPool, registry, events, jobs, listener, logger });
  const resumeListeners = new Set<(queue: string) => void>();
  const control = await startQueueControl({
    pool,
    queries: controlQueries(options.schema),
    listener,
    logger,
    onResume: (queue) => {
      for (const l of resumeListeners) l(queue);
    },
  });
  const activity = createActivity({ pool, registry, queries: activityQueries(options.schema) });
  const metrics = createMetrics({ stats, activity, control });
  const sampler = createMetricsSampler(metrics, logger);
  const alertStore = alertQueries(options.schema);
  const alertOptions = options.alerts ?? { intervalMs: 15_000, webhooks: { allowedHosts: [], allowedNetworks: [] }, webhookTimeoutMs: 5000 };
  const enqueuer = createEnqueuer({
    pool,
    registry,
    jobs,
    keys,
    dependencies,
    idempotencyWindowSeconds: options.idempotencyWindowSeconds,
    quotas: quotaChecker(quotaQueries(options.bossSchema), options.quotas ?? []),
  });
  const evaluator = startAlertEvaluator({
    url: options.url,
    schema: options.schema,
    pool,
    queries: alertStore,
    metrics,
    enqueuer,
    registry,
    logger,
    intervalMs: alertOptions.intervalMs,
    webhooks: alertOptions.webhooks,
    webhookTimeoutMs: alertOptions.webhookTimeoutMs,
  });
  const replicas = await startReplicas(pool, options.schema, logger);
  const schedules = createSchedules({ pool, queries: scheduleQueries(options.schema), registry, enqueuer, logger });
  for (const s of options.schedules ?? [])
    if (s.cron) await schedules.ensure({ name: s.name, type: s.type, cron: s.cron, timeZone: "", payload: s.payload, options: {} }, "scheduler");
  schedules.start();
  const maintenance = startMaintenance({
    pool,
    schema: options.schema,
    events,
    keys,
    dependencies,
    logger,
    idempotencyWindowSeconds: options.idempotencyWindowSeconds,
    eventRetentionSeconds: options.eventRetentionSeconds,
  });
  const work = workQueries(options.bossSchema, boss);
  const progress = createProgressWriter({ pool, work });
  const external = createExternalWork({
    pool,
    registry,
    work,
    jobs,
    gate: control,
    listener,
    leases: createLeaseTokens(await sharedSecret(pool, options.schema, "lease_token")),
    progress,
    logger,
    maxWaiting: options.externalWorkers?.maxWaiting ?? 10_000,
    maxWaitingPerPrincipal: options.externalWorkers?.maxWaitingPerPrincipal ?? 1000,
    leaseSeconds: LEASE_SECONDS,
  });
  let stopping: Promise<void> | undefined;
  const parts: EngineParts = {
    boss,
    pool,
    schema: options.schema,
    bossSchema: options.bossSchema,
    enqueuer,
    groupCommit: createGroupCommit(enqueuer, options.groupCommit ?? { concurrency: 2, maxBatch: 500 }),
    reader,
    commands: createJobCommands({ pool, registry, jobs, reader }),
    events,
    deadLetters: createDeadLetters({ pool, registry, queries: deadLetterQueries(options.schema, options.bossSchema), pageTokens }),
    work,
    listener,
    feed,
    watches: createJobWatches({ pool, registry, feed, events, reader, eventRetentionSeconds: options.eventRetentionSeconds }),
    control,
    stats,
    analytics,
    metrics,
    sampler,
    evaluator,
    replicas,
    maintenance,
    catalog,
    schedules,
    external,
    progress,
  };
  return {
    registry,
    parts,
    pageTokens,
    jobs: {
      add: (entry) => parts.groupCommit.add(entry),
      addAll: (entries) => enqueuer.add(entries, true),
      get: (viewer, id) => reader.get(viewer, id),
      list: (viewer, filter) => reader.list(viewer, filter),
      retry: (id) => parts.commands.retry(id),
      cancel: (id) => parts.commands.cancel(id),
      watchJob: (viewer, id, deliver) => parts.watches.watchJob(viewer, id, deliver),
      watchChanges: (viewer, filter, from, deliver) => parts.watches.watchChanges(viewer, filter, from, deliver),
    },
    queues: {
      stats: (windowSeconds) => stats.all(windowSeconds),
      paused: (queue) => control.paused(queue),
      pause: (queue, by) => control.pause(queue, by),
      resume: (queue) => control.resume(queue),
      deadLetters: parts.deadLetters,
    },
    limits: {
      list: () => control.limits(),
      set: (row) => control.setLimit(row),
      delete: (scope, key) => control.deleteLimit(scope, key),
    },
    metrics: {
      snapshot: (windowSeconds) => metrics.snapshot(windowSeconds),
      watch: (intervalMs, deliver) => sampler.subscribe(intervalMs, deliver),
    },
    alerts: alertUseCases(pool, alertStore, alertOptions.webhooks),
    catalog: {
      createQueue: (q) => catalog.createQueue(q),
      updateQueue: (q) => catalog.updateQueue(q),
      deleteQueue: (name) => catalog.deleteQueue(name),
      registerType: (t) => catalog.registerType(t),
      updateType: (t) => catalog.updateType(t),
      deleteType: (name) => catalog.deleteType(name),
      types: () => catalog.types(),
    },
    schedules: {
      create: (s, createdBy) => schedules.create(s, createdBy),
      get: (name) => schedules.get(name),
      list: (limit, after) => schedules.list(limit, after),
      update: (name, patch) => schedules.update(name, patch),
      remove: (name) => schedules.remove(name),
      pause: (name) => schedules.pause(name),
      resume: (name) => schedules.resume(name),
    },
    workers: {
      fetch: (viewer, types, max, waitMs, signal) => external.fetch(viewer, types, max, waitMs, signal),
      heartbeat: (viewer, tokens) => external.heartbeat(viewer, tokens),
      complete: (viewer, token, result) => external.complete(viewer, token, result),
      fail: (viewer, token, message, retryable, reason) => external.fail(viewer, token, message, retryable, reason),
      reportProgress: (viewer, token, percent, message) => external.reportProgress(viewer, token, percent, message),
    },
    onResume: (l: (queue: string) => void) => void resumeListeners.add(l),
    stop(graceMs) {
      stopping ??= (async () => {
        await schedules.stop();
        await evaluator.stop();
        await folder.stop();
        await replicas.stop();
        await maintenance.stop();
        external.stop();
        progress.stop();
        catalog.stop();
        control.stop();
        feed.stop();
        sampler.stop();
        await listener.stop();
        await feedPool.end().catch(() => {});
        await boss
          .stop({ graceful: true, close: true, timeout: Math.max(1000, graceMs) })
          .catch((err: Error) => logger.warn({ err: err.message }, "pg-boss stop failed"));
        await pool.end().catch(() => {});
      })();
      return stopping;
    },
  };
}
