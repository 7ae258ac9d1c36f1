/**
 * The generated types and enums a caller needs, re-exported so that users import one package.
 */
export { JobEventType, JobState, type Job, type JobEvent, type JobOptions } from "./gen/jobs/v1/job_pb.js";
export { JobService } from "./gen/jobs/v1/job_service_pb.js";
export { QueueService } from "./gen/jobs/v1/queue_service_pb.js";
export { AlertMetric, AlertState, HealthStatus, MonitoringService, RateLimitScope, type LatencySummary, type MetricsSnapshot, type QueueMetrics } from "./gen/jobs/v1/monitoring_service_pb.js";
export { BadRequestSchema, ErrorInfoSchema, RetryInfoSchema } from "./gen/google/rpc/error_details_pb.js";
export { Code, ConnectError } from "@connectrpc/connect";
