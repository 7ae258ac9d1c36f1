/**
 * A job's timeline: what its own fields tell (timelineFromJob), then its WatchJob events as they come,
 * one entry per event after the SNAPSHOT, in the order they happened, each once (a reconnected watch
 * may repeat what it already sent).
 */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Job, type JobEvent, JobEventType, JobState } from "../../../gen/jobs/v1/job_pb.js";

export interface TimelineEntry {
  key: string;
  type: JobEventType;
  label: string;
  at: Date;
  state: JobState;
  attempt: number;
  detail?: string;
}

const LABELS: Partial<Record<JobEventType, string>> = {
  [JobEventType.CREATED]: "Added",
  [JobEventType.STARTED]: "Attempt started",
  [JobEventType.COMPLETED]: "Completed",
  [JobEventType.RETRY_SCHEDULED]: "Attempt failed, retry scheduled",
  [JobEventType.FAILED]: "Failed",
  [JobEventType.CANCEL_REQUESTED]: "Cancel requested",
  [JobEventType.CANCELLED]: "Cancelled",
  [JobEventType.EXPIRED]: "Lease expired",
  [JobEventType.DEAD_LETTERED]: "Dead-lettered",
  [JobEventType.REDRIVEN]: "Redriven",
  [JobEventType.PURGED]: "Purged",
  [JobEventType.PROGRESS]: "Progress",
  [JobEventType.WAITING]: "Added, waiting for its parents",
  [JobEventType.RELEASED]: "Parents done, ready to run",
};

export const eventLabel = (type: JobEventType) => LABELS[type] ?? JobEventType[type] ?? "Event";

const dateOf = (t: Timestamp | undefined) => (t ? timestampDate(t) : new Date(0));

/** What an event adds to the story: the error of a failure, the note of a progress report. */
function detailOf(e: JobEvent): string | undefined {
  const job = e.job;
  if (!job) return undefined;
  if (e.type === JobEventType.PROGRESS && job.progress) return `${job.progress.percent}%${job.progress.message ? ` · ${job.progress.message}` : ""}`;
  if ((e.type === JobEventType.FAILED || e.type === JobEventType.RETRY_SCHEDULED || e.type === JobEventType.EXPIRED) && job.lastError)
    return job.lastError.reason ? `${job.lastError.reason}: ${job.lastError.message}` : job.lastError.message;
  if (e.type === JobEventType.CANCELLED && job.lastError) return job.lastError.message;
  return undefined;
}

/** `entries` with `event` added in place (a SNAPSHOT or an event already there changes nothing). */
export function addEvent(entries: readonly TimelineEntry[], event: JobEvent): TimelineEntry[] {
  if (event.type === JobEventType.SNAPSHOT) return entries as TimelineEntry[];
  const at = dateOf(event.occurredAt);
  const key = event.cursor || `${event.type}:${at.getTime()}:${event.job?.retryCount ?? 0}`;
  if (entries.some((e) => e.key === key)) return entries as TimelineEntry[];
  const entry: TimelineEntry = {
    key,
    type: event.type,
    label: eventLabel(event.type),
    at,
    state: event.job?.state ?? JobState.UNSPECIFIED,
    attempt: (event.job?.retryCount ?? 0) + 1,
    detail: detailOf(event),
  };
  const next = [...entries, entry];
  // Stable: events of the same instant keep their arrival order.
  return next
    .map((e, i) => [e, i] as const)
    .sort((a, b) => a[0].at.getTime() - b[0].at.getTime() || a[1] - b[1])
    .map(([e]) => e);
}

/** Whether the job can change no more (the watch ends after such an event). */
export function isFinal(state: JobState): boolean {
  return state === JobState.COMPLETED || state === JobState.FAILED || state === JobState.CANCELLED;
}

/**
 * The part of the story a job's own fields tell (a watch opened late only sees what happens next):
 * added, the last attempt's start, its last error, its end.
 */
export function timelineFromJob(job: Job): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  const attempt = job.retryCount + 1;
  const push = (key: string, type: JobEventType, at: Timestamp | undefined, state: JobState, detail?: string, n = attempt) => {
    if (at) entries.push({ key: `job:${key}`, type, label: eventLabel(type), at: dateOf(at), state, attempt: n, detail });
  };
  push("created", JobEventType.CREATED, job.createdAt, JobState.CREATED, job.createdBy ? `by ${job.createdBy}` : undefined, 1);
  push("started", JobEventType.STARTED, job.startedAt, JobState.ACTIVE, attempt > 1 ? `attempt ${attempt}` : undefined);
  const err = job.lastError;
  const end =
    job.state === JobState.COMPLETED
      ? JobEventType.COMPLETED
      : job.state === JobState.FAILED
        ? JobEventType.FAILED
        : job.state === JobState.CANCELLED
          ? JobEventType.CANCELLED
          : undefined;
  if (err && !(end === JobEventType.FAILED || end === JobEventType.CANCELLED))
    push(
      "error",
      JobEventType.RETRY_SCHEDULED,
      err.occurredAt,
      JobState.RETRY,
      err.reason ? `${err.reason}: ${err.message}` : err.message,
      err.attempt || attempt,
    );
  if (end !== undefined)
    push(
      "end",
      end,
      job.completedAt ?? err?.occurredAt,
      job.state,
      err && end !== JobEventType.COMPLETED ? (err.reason ? `${err.reason}: ${err.message}` : err.message) : undefined,
    );
  return entries.sort((a, b) => a.at.getTime() - b.at.getTime());
}
