/**
 * Which role each RPC needs. Checked by the auth interceptor before any handler runs; an RPC
 * missing from this table is refused to everyone but admins (and a test checks that every RPC of
 * the contract has an entry).
 */
import type { Role } from "./tokens.js";

/** `public`: no token needed; a list: any of those roles (admins always). */
export type Access = "public" | Role | readonly Role[];

/** The role each RPC needs, keyed by `<service type name>/<method name>`. */
export const accessPolicy: Readonly<Record<string, Access>> = {
  "jobs.v1.JobService/AddJob": "service",
  "jobs.v1.JobService/AddJobs": "admin",
  "jobs.v1.JobService/GetJob": "service",
  "jobs.v1.JobService/ListJobs": "service",
  "jobs.v1.JobService/RetryJob": "admin",
  "jobs.v1.JobService/CancelJob": "admin",
  "jobs.v1.JobService/WatchJob": "service",
  "jobs.v1.JobService/WatchJobs": "service",
  "jobs.v1.QueueService/ListQueues": "service",
  "jobs.v1.QueueService/GetQueueStats": "service",
  "jobs.v1.QueueService/PauseQueue": "admin",
  "jobs.v1.QueueService/ResumeQueue": "admin",
  "jobs.v1.QueueService/ListDeadLetters": "service",
  "jobs.v1.QueueService/RedriveDeadLetters": "admin",
  "jobs.v1.QueueService/PurgeDeadLetters": "admin",
  "jobs.v1.QueueService/CreateQueue": "admin",
  "jobs.v1.QueueService/UpdateQueue": "admin",
  "jobs.v1.QueueService/DeleteQueue": "admin",
  "jobs.v1.QueueService/RegisterJobType": "admin",
  "jobs.v1.QueueService/UpdateJobType": "admin",
  "jobs.v1.QueueService/DeleteJobType": "admin",
  "jobs.v1.QueueService/ListJobTypes": ["service", "worker"],
  // Workers: each call is also checked against the job type's `workers` list.
  "jobs.v1.WorkerService/FetchJobs": "worker",
  "jobs.v1.WorkerService/HeartbeatJobs": "worker",
  "jobs.v1.WorkerService/CompleteJob": "worker",
  "jobs.v1.WorkerService/FailJob": "worker",
  "jobs.v1.WorkerService/ReportProgress": "worker",
  "jobs.v1.ScheduleService/CreateSchedule": "admin",
  "jobs.v1.ScheduleService/GetSchedule": "service",
  "jobs.v1.ScheduleService/ListSchedules": "service",
  "jobs.v1.ScheduleService/UpdateSchedule": "admin",
  "jobs.v1.ScheduleService/DeleteSchedule": "admin",
  "jobs.v1.ScheduleService/PauseSchedule": "admin",
  "jobs.v1.ScheduleService/ResumeSchedule": "admin",
  "jobs.v1.MonitoringService/GetHealth": "public",
  "jobs.v1.MonitoringService/GetMetrics": "service",
  "jobs.v1.MonitoringService/WatchMetrics": "service",
  "jobs.v1.MonitoringService/ListAlertRules": "service",
  "jobs.v1.MonitoringService/CreateAlertRule": "admin",
  "jobs.v1.MonitoringService/UpdateAlertRule": "admin",
  "jobs.v1.MonitoringService/DeleteAlertRule": "admin",
  "jobs.v1.MonitoringService/ListAlerts": "service",
  "jobs.v1.MonitoringService/AcknowledgeAlert": "admin",
  "jobs.v1.MonitoringService/ListRateLimits": "service",
  "jobs.v1.MonitoringService/SetRateLimit": "admin",
  "jobs.v1.MonitoringService/DeleteRateLimit": "admin",
  "grpc.health.v1.Health/Check": "public",
  "grpc.health.v1.Health/Watch": "public",
  "grpc.health.v1.Health/List": "public",
  "grpc.reflection.v1.ServerReflection/ServerReflectionInfo": "public",
  "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": "public",
};

/** The access an RPC needs; admin for anything not listed. */
export function accessFor(service: string, method: string): Access {
  return accessPolicy[`${service}/${method}`] ?? "admin";
}

/** Whether `role` satisfies `access`. */
export function allows(role: Role, access: Access): boolean {
  if (access === "public" || role === "admin") return true;
  return typeof access === "string" ? role === access : access.includes(role);
}
