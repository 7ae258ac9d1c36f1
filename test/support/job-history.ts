/**
 * Reading jobs' histories from the event log (`job_event`, in the service schema) and checking them:
 * no job ran two attempts at once, and each completed exactly once.
 */
import type { QueryResult, QueryResultRow } from "pg";

/** One event of a job, as the capture triggers recorded it. */
export interface JobEventRow {
  job_id: string;
  type: string;
  retry_count: number;
  occurred_at: Date;
  /** On events that end an attempt: when that attempt started. */
  attempt_started_at: Date | null;
  detail: { value?: { message?: string; reason?: string } } | null;
}

type Query = <R extends QueryResultRow>(text: string, values?: unknown[]) => Promise<QueryResult<R>>;

/** Every event of `ids`, grouped by job, each job's in log order (`xid`, `seq`: the order streams serve). */
export async function jobHistories(query: Query, schema: string, ids: readonly string[]): Promise<Map<string, JobEventRow[]>> {
  const { rows } = await query<JobEventRow>(
    `SELECT job_id::text, type::text, retry_count, occurred_at, attempt_started_at, detail
     FROM "${schema}".job_event WHERE job_id = ANY($1::uuid[]) ORDER BY xid, seq`,
    [ids],
  );
  const byJob = new Map<string, JobEventRow[]>(ids.map((id) => [id, []]));
  for (const row of rows) byJob.get(row.job_id)!.push(row);
  return byJob;
}

/** Events that end an attempt. */
const ENDS_ATTEMPT = new Set(["completed", "expired", "retry_scheduled", "failed", "cancelled"]);

/**
 * What is wrong with one job's history, if anything: an attempt started while another was still
 * un-ended, a completion without a running attempt, an attempt left un-ended, attempts not counted
 * up, or not exactly `completions` completions (one, unless the job was meant to fail or be cancelled).
 */
export function historyProblems(events: readonly JobEventRow[], completions = 1): string[] {
  const problems: string[] = [];
  let open: JobEventRow | undefined;
  let completed = 0;
  let lastStartedRetryCount = -1;
  for (const e of events) {
    if (e.type === "started") {
      if (open) problems.push(`started (retry_count ${e.retry_count}) while the attempt started with retry_count ${open.retry_count} was still running`);
      if (e.retry_count <= lastStartedRetryCount) problems.push(`started with retry_count ${e.retry_count} after an attempt with ${lastStartedRetryCount}`);
      lastStartedRetryCount = e.retry_count;
      open = e;
    } else if (e.type === "completed") {
      if (!open) problems.push("completed without a running attempt");
      completed++;
      open = undefined;
    } else if (ENDS_ATTEMPT.has(e.type)) {
      open = undefined;
    }
  }
  if (open) problems.push(`the attempt with retry_count ${open.retry_count} never ended`);
  if (completed !== completions) problems.push(`${completed} completions, expected ${completions}`);
  return problems;
}

/**
 * The problems of every job whose history has any, keyed by job id (empty: all histories are sound).
 * `completions` says how many completions a job should have (default: one each).
 */
export function unsoundHistories(
  histories: ReadonlyMap<string, readonly JobEventRow[]>,
  completions: (id: string) => number = () => 1,
): Record<string, string[]> {
  const bad: Record<string, string[]> = {};
  for (const [id, events] of histories) {
    const problems = historyProblems(events, completions(id));
    if (problems.length > 0) bad[id] = [...problems, `events: ${events.map((e) => e.type).join(", ")}`];
  }
  return bad;
}
