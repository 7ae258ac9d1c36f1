/**
 * The generated types and enums a caller needs, re-exported so that users import one package.
 */

export { Code, ConnectError } from "@connectrpc/connect";
export { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";
export { type Job, type JobEvent, JobEventType, type JobOptions, JobState } from "./gen/jobs/v1/job_pb.js";
export { JobService } from "./gen/jobs/v1/job_service_pb.js";
export {
  AlertMetric,
  AlertState,
  HealthStatus,
  type LatencySummary,
  type MetricsSnapshot,
  MonitoringService,
  type QueueMetrics,
  RateLimitScope,
} from "./gen/jobs/v1/monitoring_service_pb.js";
export { type JobType as JobTypeInfo, QueueService } from "./gen/jobs/v1/queue_service_pb.js";
export { type LeasedJob, LeaseState, WorkerService } from "./gen/jobs/v1/worker_service_pb.js";
