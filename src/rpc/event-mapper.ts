/**
 * Job events as protobuf messages (encoded once, shared by every stream that sends them).
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type JobEvent, JobEventSchema, JobEventType, JobSchema, JobState } from "../../gen/jobs/v1/job_pb.js";
import type { EventPosition, FeedEvent, JobRecord, JobRegistry } from "../engine/index.js";
import { encodeCursor } from "../engine/index.js";
import { isStateName, jobStateOf, toJob } from "./job-mapper.js";

const types: Record<string, JobEventType> = {
  created: JobEventType.CREATED,
  started: JobEventType.STARTED,
  completed: JobEventType.COMPLETED,
  retry_scheduled: JobEventType.RETRY_SCHEDULED,
  failed: JobEventType.FAILED,
  cancel_requested: JobEventType.CANCEL_REQUESTED,
  cancelled: JobEventType.CANCELLED,
  expired: JobEventType.EXPIRED,
  dead_lettered: JobEventType.DEAD_LETTERED,
  redriven: JobEventType.REDRIVEN,
  purged: JobEventType.PURGED,
  progress: JobEventType.PROGRESS,
  waiting: JobEventType.WAITING,
  released: JobEventType.RELEASED,
};

const stateOf = (s: string | null | undefined): JobState => (isStateName(s) ? jobStateOf(s) : JobState.UNSPECIFIED);

/** The JobEvent of a feed event, and its encoded size (cached on the feed event). */
export function encodeEvent(e: FeedEvent, registry: JobRegistry): { message: JobEvent; bytes: number } {
  if (e.encoded) return e.encoded as { message: JobEvent; bytes: number };
  const found = registry.byBossQueue(e.row.queue_name);
  const job = e.record
    ? toJob(e.record)
    : create(JobSchema, {
        id: e.row.job_id,
        type: found?.type.type ?? "",
        queue: found?.type.queue ?? "",
        state: stateOf(e.row.state),
        retryCount: e.row.retry_count,
      });
  const message = create(JobEventSchema, {
    type: types[e.row.type] ?? JobEventType.UNSPECIFIED,
    job,
    previousState: stateOf(e.row.previous_state),
    occurredAt: timestampFromDate(e.row.occurred_at),
    cursor: encodeCursor(e.position),
  });
  const encoded = { message, bytes: toBinary(JobEventSchema, message).length };
  e.encoded = encoded;
  return encoded;
}

/** The first event of a watch: the job as it is. */
export function snapshotEvent(record: JobRecord, position: EventPosition): JobEvent {
  return create(JobEventSchema, {
    type: JobEventType.SNAPSHOT,
    job: toJob(record),
    occurredAt: timestampFromDate(new Date()),
    cursor: encodeCursor(position),
  });
}
