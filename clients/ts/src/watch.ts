/**
 * Following the service's streams through disconnects: waitForJob on WatchJob, a change feed on
 * WatchJobs that resumes from its last cursor, and metrics snapshots on WatchMetrics.
 */
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { type Job, type JobEvent, JobState } from "./gen/jobs/v1/job_pb.js";
import type { JobService, WatchJobsRequest } from "./gen/jobs/v1/job_service_pb.js";
import type { MetricsSnapshot, MonitoringService } from "./gen/jobs/v1/monitoring_service_pb.js";
import { type Backoff, normalized, pause, retryable } from "./interceptors.js";

export interface WaitOptions {
  /** Give up after this long (DEADLINE_EXCEEDED). Default: no limit. */
  timeoutMs?: number;
  /** Stop waiting when this aborts (rejects with its reason). */
  signal?: AbortSignal;
}

export interface WatchOptions {
  /** Stop the feed when this aborts. */
  signal?: AbortSignal;
}

/** States a job stays in unless an admin retries or redrives it. */
export function isFinal(state: JobState): boolean {
  return state === JobState.COMPLETED || state === JobState.CANCELLED || state === JobState.FAILED;
}

export async function waitForJob(jobs: Client<typeof JobService>, backoff: Backoff, id: string, options: WaitOptions = {}): Promise<Job> {
  const timeout = options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs);
  const signal = AbortSignal.any([options.signal, timeout].filter((s): s is AbortSignal => s !== undefined));
  let last: Job | undefined;
  for (let attempt = 0; ; attempt++) {
    try {
      for await (const { event } of jobs.watchJob({ id }, { signal })) {
        if (!event?.job) continue;
        last = event.job;
        attempt = 0;
        if (isFinal(last.state)) return last;
      }
      // The stream ended without a final state (the job was retried meanwhile): follow it again.
    } catch (err) {
      if (!signal.aborted && !retryable(err)) throw normalized(err);
    }
    if (options.signal?.aborted) throw options.signal.reason;
    if (timeout?.aborted) {
      const where = last ? `; it is ${JobState[last.state]}` : "";
      throw new ConnectError(`job ${id} did not finish within ${options.timeoutMs} ms${where}`, Code.DeadlineExceeded);
    }
    try {
      await pause(backoff, attempt, signal);
    } catch {
      // Aborted while pausing: reported at the top of the next turn.
    }
  }
}

/** Yields what `open` streams, opening it again after UNAVAILABLE, until `signal` aborts. */
async function* reconnecting<T>(
  open: (signal: AbortSignal | undefined) => AsyncIterable<T>,
  backoff: Backoff,
  signal: AbortSignal | undefined,
): AsyncGenerator<T, void, undefined> {
  for (let attempt = 0; !signal?.aborted; attempt++) {
    try {
      for await (const item of open(signal)) {
        attempt = 0;
        yield item;
      }
    } catch (err) {
      if (signal?.aborted) return;
      if (!retryable(err)) throw normalized(err);
    }
    try {
      await pause(backoff, attempt, signal);
    } catch {
      return;
    }
  }
}

export async function* watchJobs(
  jobs: Client<typeof JobService>,
  backoff: Backoff,
  filter: Partial<Pick<WatchJobsRequest, "queue" | "types" | "states" | "cursor">>,
  options: WatchOptions = {},
): AsyncGenerator<JobEvent, void, undefined> {
  let cursor = filter.cursor ?? "";
  const open = (signal: AbortSignal | undefined) => jobs.watchJobs({ ...filter, cursor }, { signal });
  for await (const { event } of reconnecting(open, backoff, options.signal)) {
    if (!event) continue;
    cursor = event.cursor;
    yield event;
  }
}

export async function* watchMetrics(
  monitoring: Client<typeof MonitoringService>,
  backoff: Backoff,
  request: { queue?: string; intervalMs?: number },
  options: WatchOptions = {},
): AsyncGenerator<MetricsSnapshot, void, undefined> {
  const interval = request.intervalMs === undefined ? undefined : durationFromMs(request.intervalMs);
  const open = (signal: AbortSignal | undefined) => monitoring.watchMetrics({ queue: request.queue ?? "", interval }, { signal });
  for await (const { snapshot } of reconnecting(open, backoff, options.signal)) if (snapshot) yield snapshot;
}
