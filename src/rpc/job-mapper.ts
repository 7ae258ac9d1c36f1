/**
 * The one place engine records become protobuf messages.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { JobSchema, JobState, type Job } from "../../gen/jobs/v1/job_pb.js";
import type { BossState, JobRecord } from "../engine/job-record.js";

const states: Record<BossState, JobState> = {
  created: JobState.CREATED,
  retry: JobState.RETRY,
  active: JobState.ACTIVE,
  completed: JobState.COMPLETED,
  cancelled: JobState.CANCELLED,
  failed: JobState.FAILED,
};

/** The API state of a pg-boss state. */
export function jobStateOf(state: BossState): JobState {
  return states[state];
}

/** The pg-boss state of an API state (undefined for UNSPECIFIED or unknown values). */
export function bossStateOf(state: JobState): BossState | undefined {
  return (Object.keys(states) as BossState[]).find((k) => states[k] === state);
}

/** Maps a job record to the protobuf Job. */
export function toJob(r: JobRecord): Job {
  return create(JobSchema, {
    id: r.id,
    type: r.jobType.type,
    queue: r.jobType.queue,
    state: jobStateOf(r.state),
    payload: r.envelope.payload as Job["payload"],
    priority: r.priority,
    retryCount: r.retryCount,
    retryLimit: r.retryLimit,
    createdAt: timestampFromDate(r.createdAt),
    startAfter: timestampFromDate(r.startAfter),
    startedAt: r.startedAt ? timestampFromDate(r.startedAt) : undefined,
    completedAt: r.completedAt ? timestampFromDate(r.completedAt) : undefined,
    result: r.result as Job["result"],
    lastError: r.lastError
      ? {
          message: r.lastError.message,
          retryable: r.lastError.retryable,
          attempt: r.lastError.attempt,
          occurredAt: r.lastError.occurredAt ? timestampFromDate(r.lastError.occurredAt) : undefined,
          reason: r.lastError.reason ?? "",
        }
      : undefined,
    idempotencyKey: r.envelope.idempotencyKey ?? "",
    createdBy: r.envelope.principal,
    cancelRequested: r.envelope.cancelRequested === true,
    rootJobId: r.envelope.rootJobId,
    deadLetter: r.deadLetter,
    sourceJobId: r.sourceJobId ?? "",
    deadLetterJobId: r.deadLetterJobId ?? "",
    retryDelay: durationFromMs(r.retryDelaySeconds * 1000),
    retryBackoff: r.retryBackoff,
    expireIn: durationFromMs(r.expireInSeconds * 1000),
  });
}
