/**
 * What the engine offers the API: its use cases, grouped as the services are (jobs, queues, limits,
 * metrics, alerts). The RPC layer depends on this interface only, never on a pool, a query module or
 * the event log: it validates requests, calls a use case and maps the answer.
 */
import type { Pool } from "../db/pool.js";
import type { JobTypeInput, QueueInput } from "./catalog.js";
import type { DeadLetters } from "./dead-letters.js";
import type { EnqueueEntry, EnqueueOutcome } from "./enqueue.js";
import { AlreadyExistsError } from "./errors.js";
import type { FeedEvent } from "./event-feed.js";
import type { LeasedRecord, LeaseState } from "./external-work.js";
import type { JobPage, ListFilter } from "./job-reader.js";
import type { ChangesFilter, ChangesWatch, JobWatch } from "./job-watch.js";
import type { MetricsView } from "./metrics.js";
import type { PageTokens } from "./page-token.js";
import type { AlertQueries, AlertRow, AlertRuleRow, AlertStateName, RuleFields } from "./queries/alert-queries.js";
import type { PauseRow, RateLimitRow } from "./queries/control-queries.js";
import type { QueueStatistics } from "./queue-stats.js";
import type { QueueDefinition, RegisteredJobType } from "./registry.js";
import type { ScheduleInput, ScheduleRow } from "./schedules.js";
import type { EventPosition } from "./store/event-queries.js";
import type { JobRecord } from "./store/job-record.js";
import type { Viewer } from "./viewer.js";
import type { WebhookPolicy } from "./webhooks.js";

/** Adding, reading, steering and watching jobs. */
export interface JobUseCases {
  /** Adds one job, sharing a transaction with concurrent adds (its own outcome: its conflict, its quota). */
  add(entry: EnqueueEntry): Promise<EnqueueOutcome>;
  /** Adds jobs atomically: all or none (a BatchEntryError names the failing entry). */
  addAll(entries: EnqueueEntry[]): Promise<EnqueueOutcome[]>;
  get(viewer: Viewer, id: string): Promise<JobRecord>;
  list(viewer: Viewer, filter: ListFilter): Promise<JobPage>;
  retry(id: string): Promise<JobRecord>;
  cancel(id: string): Promise<JobRecord>;
  watchJob(viewer: Viewer, id: string, deliver: (events: FeedEvent[]) => void): Promise<JobWatch>;
  watchChanges(viewer: Viewer, filter: ChangesFilter, from: EventPosition | undefined, deliver: (events: FeedEvent[]) => void): Promise<ChangesWatch>;
}

/** Queues: numbers, pauses, dead letters. */
export interface QueueUseCases {
  /** Every queue's statistics, finished counts over `windowSeconds`. */
  stats(windowSeconds: number): Promise<QueueStatistics[]>;
  paused(queue: string): PauseRow | undefined;
  pause(queue: string, by: string): Promise<PauseRow>;
  resume(queue: string): Promise<void>;
  readonly deadLetters: DeadLetters;
}

/** Rate limits (processing and API). */
export interface LimitUseCases {
  list(): RateLimitRow[];
  set(row: Omit<RateLimitRow, "updated_at">): Promise<RateLimitRow>;
  delete(scope: string, key: string): Promise<boolean>;
}

/** Metrics of every queue. */
export interface MetricsUseCases {
  snapshot(windowSeconds: number): Promise<MetricsView>;
  /** Calls `deliver` with a snapshot now and then every `intervalMs`; returns the unsubscribe. */
  watch(intervalMs: number, deliver: (view: MetricsView) => void): () => void;
}

/** Alert rules and alerts. */
export interface AlertUseCases {
  /** Where webhooks may go (a rule's URL is checked against it). */
  readonly webhooks: WebhookPolicy;
  rules(afterName: string | undefined, limit: number): Promise<AlertRuleRow[]>;
  rule(id: string): Promise<AlertRuleRow | undefined>;
  /** ALREADY_EXISTS for a name in use. */
  createRule(fields: RuleFields): Promise<AlertRuleRow>;
  updateRule(id: string, fields: RuleFields): Promise<AlertRuleRow | undefined>;
  deleteRule(id: string): Promise<boolean>;
  alerts(state: AlertStateName | undefined, after: { firedAt: Date; id: string } | undefined, limit: number): Promise<AlertRow[]>;
  alert(id: string): Promise<AlertRow | undefined>;
  acknowledge(id: string, by: string): Promise<AlertRow | undefined>;
}

/** Queues and job types of your own (the catalog). */
export interface CatalogUseCases {
  createQueue(q: QueueInput): Promise<QueueDefinition>;
  updateQueue(q: QueueInput): Promise<QueueDefinition>;
  deleteQueue(name: string): Promise<void>;
  registerType(t: JobTypeInput): Promise<RegisteredJobType>;
  updateType(t: Omit<JobTypeInput, "queue">): Promise<RegisteredJobType>;
  deleteType(name: string): Promise<void>;
  /** Every job type, built-in and registered, by name. */
  types(): RegisteredJobType[];
}

/** Recurring jobs (ScheduleService). */
export interface ScheduleUseCases {
  create(s: ScheduleInput, createdBy: string): Promise<ScheduleRow>;
  get(name: string): Promise<ScheduleRow>;
  list(limit: number, after?: string): Promise<ScheduleRow[]>;
  update(name: string, patch: (current: ScheduleRow) => ScheduleInput): Promise<ScheduleRow>;
  remove(name: string): Promise<void>;
  pause(name: string): Promise<ScheduleRow>;
  resume(name: string): Promise<ScheduleRow>;
}

/** External workers (WorkerService). */
export interface WorkerUseCases {
  fetch(viewer: Viewer, types: readonly string[], max: number, waitMs: number, signal: AbortSignal): Promise<LeasedRecord[]>;
  heartbeat(viewer: Viewer, tokens: readonly string[]): Promise<LeaseState[]>;
  complete(viewer: Viewer, token: string, result: Record<string, unknown>): Promise<JobRecord>;
  fail(viewer: Viewer, token: string, message: string, retryable: boolean, reason: string | undefined): Promise<JobRecord>;
  reportProgress(viewer: Viewer, token: string, percent: number, message: string): Promise<void>;
}

/** The engine, as the API sees it. */
export interface EngineApi {
  /** Signs and verifies page tokens (every replica verifies every other's). */
  readonly pageTokens: PageTokens;
  readonly jobs: JobUseCases;
  readonly queues: QueueUseCases;
  readonly limits: LimitUseCases;
  readonly metrics: MetricsUseCases;
  readonly alerts: AlertUseCases;
  readonly catalog: CatalogUseCases;
  readonly workers: WorkerUseCases;
  readonly schedules: ScheduleUseCases;
}

/** The alert use cases on the alert tables. */
export function alertUseCases(pool: Pool, queries: AlertQueries, webhooks: WebhookPolicy): AlertUseCases {
  const uniqueName = (name: string) => (err: unknown) => {
    if ((err as { code?: string }).code === "23505")
      throw new AlreadyExistsError(`an alert rule named ${JSON.stringify(name)} exists already`, "ALERT_RULE_EXISTS");
    throw err;
  };
  return {
    webhooks,
    rules: (afterName, limit) => queries.rules(pool, afterName, limit),
    rule: (id) => queries.rule(pool, id),
    createRule: (fields) => queries.createRule(pool, fields).catch(uniqueName(fields.name)),
    updateRule: (id, fields) => queries.updateRule(pool, id, fields).catch(uniqueName(fields.name)),
    deleteRule: (id) => queries.deleteRule(pool, id),
    alerts: (state, after, limit) => queries.alerts(pool, state, after, limit),
    alert: (id) => queries.alert(pool, id),
    acknowledge: (id, by) => queries.acknowledge(pool, id, by),
  };
}
