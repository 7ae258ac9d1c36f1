/**
 * pg-boss, started and tuned for the service, with one pg-boss queue (and one dead letter queue)
 * per job type, created or updated from the registry at start.
 *
 * Tuning (see docs/engine.md): the supervisor runs every few seconds so that
 * an expired attempt or a lost heartbeat is noticed within seconds rather than a minute; every queue
 * is partitioned into its own table so counts and fetches of one queue never scan another.
 */
import { PgBoss, type Queue } from "pg-boss";
import type { Logger } from "../../logger.js";
import type { JobRegistry, RegisteredJobType } from "../registry.js";

/** How often the supervisor looks for expired attempts and lost heartbeats. */
export const SUPERVISE_INTERVAL_SECONDS = 5;
/** How long a worker may go without a heartbeat before its job is failed (pg-boss's minimum is 10). */
export const LEASE_SECONDS = 10;
/** How long a job waits in `created` or `retry` before pg-boss deletes it (counted from start_after). */
export const QUEUED_RETENTION_SECONDS = 30 * 24 * 60 * 60;

export interface StartBossOptions {
  url: string;
  schema: string;
  poolMax: number;
  registry: JobRegistry;
  logger: Logger;
  /** Called with every pg-boss error event (they are also logged). */
  onError?: (err: Error) => void;
}

/** Starts pg-boss (installing or migrating its schema) and makes sure every queue exists. */
export async function startBoss(options: StartBossOptions): Promise<PgBoss> {
  const { logger } = options;
  const boss = new PgBoss({
    connectionString: options.url,
    schema: options.schema,
    max: options.poolMax,
    application_name: "queue-service:pg-boss",
    // Workers wake on the service's own notifications (the capture trigger sends them for every
    // runnable job, whoever inserted it), so pg-boss's listener would only cost a connection.
    useListenNotify: false,
    supervise: true,
    superviseIntervalSeconds: SUPERVISE_INTERVAL_SECONDS,
    monitorIntervalSeconds: SUPERVISE_INTERVAL_SECONDS,
    // The supervisor expires attempts only in the queues of its cache: a job type registered through
    // the API must be supervised (lost leases reclaimed) within seconds, not a minute.
    queueCacheIntervalSeconds: SUPERVISE_INTERVAL_SECONDS,
    schedule: true,
    migrate: true,
    persistWarnings: false,
    registerInstance: true,
    instanceName: "queue-service",
    // The service traces jobs itself (one CONSUMER span per attempt, continuing AddJob's trace) and
    // keeps its own metrics; pg-boss's spans would add a root trace for every poll, most of them
    // claiming nothing.
    openTelemetry: { enabled: false },
  });
  boss.on("error", (err: Error) => {
    logger.error({ err: err.message }, "pg-boss error");
    options.onError?.(err);
  });
  boss.on("warning", (warning: { message: string }) => logger.warn({ warning: warning.message }, "pg-boss warning"));
  try {
    await boss.start();
    await ensureQueues(boss, options.registry);
  } catch (err) {
    await boss.stop({ graceful: false, close: true }).catch(() => {});
    throw err;
  }
  return boss;
}

/** The pg-boss options of a job type's queue. */
export function queueOptions(type: RegisteredJobType): Omit<Queue, "name"> {
  const p = type.queueDefinition.policy;
  return {
    policy: "standard",
    partition: true,
    retryLimit: p.retryLimit,
    retryDelay: p.retryDelaySeconds,
    retryBackoff: p.retryBackoff,
    // pg-boss takes a cap only with backoff.
    ...(p.retryBackoff ? { retryDelayMax: p.retryDelayMaxSeconds } : {}),
    expireInSeconds: p.expireInSeconds,
    retentionSeconds: QUEUED_RETENTION_SECONDS,
    deleteAfterSeconds: p.deleteAfterSeconds,
    deadLetter: type.deadLetterBossQueue,
    heartbeatSeconds: LEASE_SECONDS,
    notify: false,
  };
}

/** The pg-boss options of a job type's dead letter queue: jobs there are kept, never worked. */
export function deadLetterQueueOptions(type: RegisteredJobType): Omit<Queue, "name"> {
  const p = type.queueDefinition.policy;
  return {
    policy: "standard",
    partition: true,
    retryLimit: 0,
    retentionSeconds: p.deadLetterRetentionSeconds,
    deleteAfterSeconds: p.deleteAfterSeconds,
    expireInSeconds: p.expireInSeconds,
    notify: false,
  };
}

/**
 * Sets (or with an empty cron, removes) a job type's schedule: one job per occurrence across every
 * replica (pg-boss files each occurrence in a slot of its own), with `data` as its envelope.
 */
export async function applySchedule(boss: PgBoss, type: RegisteredJobType, cron: string, data: object): Promise<void> {
  if (cron) await boss.schedule(type.bossQueue, cron, data, { key: "default", tz: "UTC" });
  else await boss.unschedule(type.bossQueue, "default");
}

/** Creates the queues that are missing and brings the others' policies up to date. */
export async function ensureQueues(boss: PgBoss, registry: JobRegistry): Promise<void> {
  for (const type of registry.types) await upsertTypeQueues(boss, type);
}

/** Creates (or brings up to date) a job type's pg-boss queue and dead letter queue. */
export async function upsertTypeQueues(boss: PgBoss, type: RegisteredJobType): Promise<void> {
  // Dead letter queues first: a queue's foreign key names its dead letter queue.
  await upsertQueue(boss, type.deadLetterBossQueue, deadLetterQueueOptions(type));
  await upsertQueue(boss, type.bossQueue, queueOptions(type));
}

async function upsertQueue(boss: PgBoss, name: string, options: Omit<Queue, "name">): Promise<void> {
  const existing = await boss.getQueue(name);
  if (!existing) {
    try {
      await boss.createQueue(name, options);
      return;
    } catch (err) {
      // Created meanwhile by another replica: update it like an existing one.
      if (!(await boss.getQueue(name))) throw err;
    }
  }
  const { policy: _policy, partition: _partition, ...changeable } = options;
  await boss.updateQueue(name, changeable);
}
