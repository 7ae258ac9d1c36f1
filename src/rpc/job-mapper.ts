/**
 * The one place engine records become protobuf messages.
 */
import { create } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Job, JobErrorSchema, JobProgressSchema, JobSchema, JobState, ParentFailurePolicy } from "../../gen/jobs/v1/job_pb.js";
import type { JobRecord, JobStateName } from "../engine/index.js";

const states: Record<JobStateName, JobState> = {
  created: JobState.CREATED,
  retry: JobState.RETRY,
  active: JobState.ACTIVE,
  completed: JobState.COMPLETED,
  cancelled: JobState.CANCELLED,
  failed: JobState.FAILED,
  waiting: JobState.WAITING,
};

/** The API state of a state name. */
export function jobStateOf(state: JobStateName): JobState {
  return states[state];
}

/** Whether a text is a state name (event rows carry them as text). */
export const isStateName = (s: string | null | undefined): s is JobStateName => s != null && Object.hasOwn(states, s);

/** The state name of an API state (undefined for UNSPECIFIED or unknown values). */
export function stateNameOf(state: JobState): JobStateName | undefined {
  return (Object.keys(states) as JobStateName[]).find((k) => states[k] === state);
}

/**
 * A Job with every field at its zero value. Mapping copies it and sets the fields: a copy of a
 * complete message costs a fraction of `create()` with an initializer, and every Job then has the
 * same shape, which keeps encoding them fast (AddJobs maps up to 1,000 at a time). proto3 messages
 * are plain objects; should the generated Job ever need a prototype (explicit presence), `create()`
 * is used instead.
 */
const zeroJob = create(JobSchema);
const plainMessages = Object.getPrototypeOf(zeroJob) === Object.prototype;

/** Maps a job record to the protobuf Job. */
export function toJob(r: JobRecord): Job {
  const fields = {
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
  };
  const job: Job = plainMessages ? { ...zeroJob, ...fields } : create(JobSchema, fields);
  // Message fields a job may lack stay absent, as `create()` leaves them.
  if (r.startedAt) job.startedAt = timestampFromDate(r.startedAt);
  if (r.completedAt) job.completedAt = timestampFromDate(r.completedAt);
  if (r.result !== undefined) job.result = r.result as Job["result"];
  const e = r.envelope;
  if (e.dependsOn) {
    job.dependsOn = e.dependsOn;
    job.onParentFailure = e.onParentFailure === "run" ? ParentFailurePolicy.RUN : ParentFailurePolicy.CANCEL;
  }
  if (e.concurrencyKey !== undefined) job.concurrencyKey = e.concurrencyKey;
  const progress = r.envelope.progress;
  if (progress)
    job.progress = create(JobProgressSchema, {
      percent: progress.percent,
      message: progress.message,
      updatedAt: timestampFromDate(new Date(progress.updatedAt)),
    });
  if (r.lastError) {
    job.lastError = create(JobErrorSchema, {
      message: r.lastError.message,
      retryable: r.lastError.retryable,
      attempt: r.lastError.attempt,
      occurredAt: r.lastError.occurredAt ? timestampFromDate(r.lastError.occurredAt) : undefined,
      reason: r.lastError.reason ?? "",
    });
  }
  return job;
}
