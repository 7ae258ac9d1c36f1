/**
 * The engine's public surface: everything the API layer (src/rpc) may use, and nothing else. The
 * use cases (use-cases.ts), the types they take and return, the errors they throw, and the few pure
 * helpers a request or an answer needs (cursors, field rules, the watch's end rule, percentiles).
 */
export { type Activity, type Histogram, maxOf, quantile } from "./activity.js";
export { DEFAULT_POLICY, JOB_TYPE_NAME, type JobTypeInput, QUEUE_NAME, type QueueInput } from "./catalog.js";
export { BatchEntryError, type EnqueueEntry, type EnqueueOutcome } from "./enqueue.js";
export * from "./errors.js";
export { decodeCursor, encodeCursor } from "./event-cursor.js";
export type { FeedEvent } from "./event-feed.js";
export { type LeasedRecord, type LeaseState, MAX_FETCH_JOBS, MAX_FETCH_WAIT_MS } from "./external-work.js";
export { fingerprint } from "./fingerprint.js";
export type { JobPage, ListFilter } from "./job-reader.js";
export { endsWatch, isFinalRecord } from "./job-watch.js";
export type { MetricsView } from "./metrics.js";
export { SAMPLER_TICK_MS } from "./metrics-sampler.js";
export type { NewJob } from "./new-job.js";
export { MAX_PROGRESS_MESSAGE } from "./progress.js";
export type { AlertMetricName, AlertRow, AlertRuleRow, AlertStateName, AlertTarget, RuleFields } from "./queries/alert-queries.js";
export type { PauseRow, RateLimitRow } from "./queries/control-queries.js";
export type { Counts, QueueStatistics } from "./queue-stats.js";
export { type JobRegistry, mayProduce, mayWork, type QueueDefinition, type QueuePolicy, type RegisteredJobType } from "./registry.js";
export { SCHEDULE_NAME, type ScheduleInput, type ScheduleOptions, type ScheduleRow, scheduleViolations } from "./schedules.js";
export type { EventPosition } from "./store/event-queries.js";
export type { BossState, JobRecord, JobStateName } from "./store/job-record.js";
export type {
  AlertUseCases,
  CatalogUseCases,
  EngineApi,
  JobUseCases,
  LimitUseCases,
  MetricsUseCases,
  QueueUseCases,
  WorkerUseCases,
} from "./use-cases.js";
export type { Viewer } from "./viewer.js";
export { webhookAllowed } from "./webhooks.js";
