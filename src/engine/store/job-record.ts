/**
 * A job as the engine sees it: one row of pg-boss's job table, with the service's envelope (kept in
 * the row's `data`) unpacked. The RPC layer maps it to the protobuf `Job` in one place.
 */
import { InternalError } from "../errors.js";
import type { JobRegistry, RegisteredJobType } from "../registry.js";

/** pg-boss's job states. */
export type BossState = "created" | "retry" | "active" | "completed" | "cancelled" | "failed";

/** A job's state as the API names it: pg-boss's, and `waiting` for a created job blocked on its parents. */
export type JobStateName = BossState | "waiting";

/** The API's state of a row: `created` and blocked is `waiting`. */
export const stateName = (state: BossState, blocked: boolean | undefined): JobStateName => (state === "created" && blocked ? "waiting" : state);

/**
 * What the service keeps in a pg-boss job's `data`: the client's payload apart from what the service
 * needs. pg-boss copies `data` through retries, dead letters and redrives, so lineage survives.
 */
export interface Envelope {
  payload: Record<string, unknown>;
  /** The first job of the line; providers derive their idempotency key from it. */
  rootJobId: string;
  /** The name of the principal that added the job. */
  principal: string;
  /** Set when that principal was an admin (money processors let admins refund any payment). */
  admin?: true;
  idempotencyKey?: string;
  /** W3C trace context of the AddJob call. */
  traceparent?: string;
  /** An admin asked to cancel the job while it ran. */
  cancelRequested?: boolean;
  /** The last progress a running attempt reported (kept through retries until the next report). */
  progress?: { percent: number; message: string; updatedAt: string };
  /** The jobs this one waited or waits for. */
  dependsOn?: string[];
  /** What a parent's failure does to the job (unset: cancel). */
  onParentFailure?: "run";
  /** The job's concurrency key (also in the row's `group_id`, which the claim reads). */
  concurrencyKey?: string;
}

/** The last failure of a job, as stored in its output. */
export interface JobFailure {
  message: string;
  reason?: string;
  retryable: boolean;
  attempt: number;
  occurredAt?: Date;
}

/** A job. */
export interface JobRecord {
  id: string;
  jobType: RegisteredJobType;
  /** The pg-boss queue the row is in. */
  bossQueue: string;
  /** The row sits in the job type's dead letter queue. */
  deadLetter: boolean;
  /** The state as the API reports it (a dead letter is reported `failed`; a blocked job `waiting`). */
  state: JobStateName;
  envelope: Envelope;
  priority: number;
  retryCount: number;
  retryLimit: number;
  retryDelaySeconds: number;
  retryBackoff: boolean;
  expireInSeconds: number;
  createdAt: Date;
  startAfter: Date;
  startedAt?: Date;
  completedAt?: Date;
  result?: Record<string, unknown>;
  lastError?: JobFailure;
  /** For a dead letter: the job it came from. */
  sourceJobId?: string;
  /** For a failed job: its dead letter copy, when one exists (filled by the reader). */
  deadLetterJobId?: string;
  /** pg-boss's root of the dead letter chain (equals envelope.rootJobId for jobs this service added). */
  sourceRootId?: string;
  /** The dead letter queue a failure is copied to. */
  deadLetterQueue?: string;
}

const COLUMN_NAMES = [
  "id",
  "name",
  "data",
  "state",
  "priority",
  "retry_count",
  "retry_limit",
  "retry_delay",
  "retry_backoff",
  "expire_seconds",
  "created_on",
  "start_after",
  "started_on",
  "completed_on",
  "output",
  "dead_letter",
  "source_id",
  "source_root_id",
  "source_retry_count",
  "source_output",
  "blocked",
] as const;

/** The columns every job query selects, in the shape {@link recordFromRow} reads (of table `alias`, if given). */
export function jobColumns(alias?: string): string {
  const of = (c: string) => (alias ? `${alias}.${c}` : c);
  return COLUMN_NAMES.map((c) => (c === "state" ? `${of(c)}::text AS state` : of(c))).join(", ");
}

/** {@link jobColumns} of an unaliased table. */
export const JOB_COLUMNS = jobColumns();

/** A row of {@link JOB_COLUMNS}. */
export interface JobRow {
  id: string;
  name: string;
  data: Envelope | null;
  state: BossState;
  priority: number;
  retry_count: number;
  retry_limit: number;
  retry_delay: number;
  retry_backoff: boolean;
  expire_seconds: number;
  created_on: Date;
  start_after: Date;
  started_on: Date | null;
  completed_on: Date | null;
  output: unknown;
  dead_letter: string | null;
  source_id: string | null;
  source_root_id: string | null;
  source_retry_count: number | null;
  source_output: unknown;
  /** Waiting for parents (pg-boss's dependency flag, which its fetch honours). */
  blocked: boolean;
}

/** Reads a failure from a job's output: the service's own shape, or pg-boss's `{value: {message}}`. */
export function failureFromOutput(output: unknown, attempt: number): JobFailure | undefined {
  if (!output || typeof output !== "object") return undefined;
  const o = output as Record<string, unknown>;
  if (typeof o.message === "string") {
    return {
      message: o.message,
      reason: typeof o.reason === "string" ? o.reason : undefined,
      retryable: o.retryable !== false,
      attempt: typeof o.attempt === "number" ? o.attempt : attempt,
      occurredAt: typeof o.occurredAt === "string" ? new Date(o.occurredAt) : undefined,
    };
  }
  const value = o.value as Record<string, unknown> | undefined;
  if (value && typeof value.message === "string") {
    // pg-boss's supervisor: an attempt that ran past its expiry or lost its heartbeat.
    const reason = value.message === "job timed out" ? "JOB_EXPIRED" : value.message === "job heartbeat timeout" ? "LEASE_LOST" : undefined;
    return { message: value.message, reason, retryable: true, attempt };
  }
  return undefined;
}

/** Maps a job row to a record; a row of a queue the registry does not know is an internal error. */
export function requireRecord(row: JobRow, registry: JobRegistry): JobRecord {
  const record = recordFromRow(row, registry);
  if (!record) throw new InternalError(`job ${row.id} is in an unknown queue ${row.name}`);
  return record;
}

/** Maps a job row to a record; undefined for a row of a queue the registry does not know. */
export function recordFromRow(row: JobRow, registry: JobRegistry): JobRecord | undefined {
  const found = registry.byBossQueue(row.name);
  if (!found || !row.data) return undefined;
  const deadLetter = found.deadLetter;
  const attempt = (deadLetter ? (row.source_retry_count ?? 0) : row.retry_count) + 1;
  const failureSource = deadLetter ? row.source_output : row.output;
  const isFailureState = deadLetter || row.state === "retry" || row.state === "failed" || row.state === "active" || row.state === "cancelled";
  return {
    id: row.id,
    jobType: found.type,
    bossQueue: row.name,
    deadLetter,
    state: deadLetter ? "failed" : stateName(row.state, row.blocked),
    // Jobs sent by pg-boss's cron carry the service's envelope without a root: the job is its own.
    envelope: row.data.rootJobId ? row.data : { ...row.data, rootJobId: row.source_root_id ?? row.id, principal: row.data.principal ?? "scheduler" },
    priority: row.priority,
    retryCount: deadLetter ? (row.source_retry_count ?? 0) : row.retry_count,
    retryLimit: row.retry_limit,
    retryDelaySeconds: row.retry_delay,
    retryBackoff: row.retry_backoff,
    expireInSeconds: row.expire_seconds,
    createdAt: row.created_on,
    startAfter: row.start_after,
    startedAt: row.started_on ?? undefined,
    completedAt: deadLetter ? row.created_on : (row.completed_on ?? undefined),
    result: !deadLetter && row.state === "completed" && row.output && typeof row.output === "object" ? (row.output as Record<string, unknown>) : undefined,
    lastError: isFailureState ? failureFromOutput(failureSource, deadLetter ? attempt : row.state === "active" ? attempt - 1 : attempt) : undefined,
    sourceJobId: row.source_id ?? undefined,
    sourceRootId: row.source_root_id ?? undefined,
    deadLetterQueue: row.dead_letter ?? undefined,
  };
}
