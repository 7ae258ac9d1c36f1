/**
 * A worker for job types of your own, in your own service: it long-polls WorkerService.FetchJobs for
 * the types it serves, runs each job's handler (at most `concurrency` at once), keeps their leases
 * alive with batched heartbeats, and completes or fails each job.
 *
 *   const worker = createWorker<{ invoiceId: string }>({
 *     baseUrl, token, types: ["invoice:render"], concurrency: 4,
 *     handler: async (job) => {
 *       await job.progress(50, "rendering");
 *       return { url: await render(job.payload.invoiceId, { signal: job.signal }) };
 *     },
 *   });
 *
 * - The handler's return value is the job's result; a thrown error fails the attempt (retried by the
 *   queue's policy), a {@link PermanentJobError} fails the job for good (its dead letter queue).
 * - `job.signal` aborts when the lease is lost (the job may run elsewhere: the outcome is discarded),
 *   when an admin asks to cancel (stop before any side effect and throw: the job ends cancelled), and
 *   when the worker stops past its grace period.
 * - Delivery is at least once: a worker that dies mid-job loses its lease and the job runs again.
 * - SIGTERM and SIGINT stop it gracefully (unless `handleSignals: false`): no new fetch, running jobs
 *   get `graceMs` to finish, the rest are failed as retryable.
 * - A lost connection is retried with backoff, forever, until stopped.
 */

import type { JsonObject } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Job } from "./gen/jobs/v1/job_pb.js";
import { type LeasedJob, LeaseState } from "./gen/jobs/v1/worker_service_pb.js";
import { createQueueClient, type NodeClientOptions, type NodeQueueClient } from "./index.js";
import { backoffOf, pause } from "./interceptors.js";

/** Thrown by a handler: the job fails for good (no retry), whatever retries are left. */
export class PermanentJobError extends Error {
  override name = "PermanentJobError";
  /** A stable machine-readable reason, e.g. `INVALID_TEMPLATE` (`^[A-Z][A-Z0-9_]{0,63}$`). */
  constructor(
    message: string,
    readonly reason?: string,
  ) {
    super(message);
  }
}

/** Why a job's signal aborted. */
export type StopReason = "lease-lost" | "cancel-requested" | "shutting-down";

/** Thrown by `job.signal.throwIfAborted()` (its `reason`). */
export class JobStopped extends Error {
  override name = "JobStopped";
  constructor(readonly reason: StopReason) {
    super(`job stopped: ${reason}`);
  }
}

/** A job handed to a handler. */
export interface WorkerJob<P> {
  readonly id: string;
  readonly type: string;
  readonly payload: P;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Aborts on a lost lease, a cancel request, or a stop past the grace period ({@link JobStopped}). */
  readonly signal: AbortSignal;
  /** Reports progress (0-100, a short note): `Job.progress` and a PROGRESS event watchers see. */
  progress(percent: number, message?: string): Promise<void>;
  /** The whole job as the service sent it. */
  readonly job: Job;
}

export interface WorkerOptions<P> extends NodeClientOptions {
  /** The job types to run (each must list this worker's principal in its `workers`). */
  types: string[];
  /** Returns the job's result (a JSON object), or nothing. */
  // biome-ignore lint/suspicious/noConfusingVoidType: a handler that returns nothing is `async () => {}`, typed Promise<void>.
  handler: (job: WorkerJob<P>) => Promise<Record<string, unknown> | undefined | void>;
  /** Jobs run at once. Default 10. */
  concurrency?: number;
  /** How long one FetchJobs waits for a job. Default 20 s (at most 30 s). */
  pollWaitMs?: number;
  /** How often held leases are extended (the lease is 10 s). Default 3 s. */
  heartbeatIntervalMs?: number;
  /** How long running jobs may finish after `stop()`. Default 10 s. */
  graceMs?: number;
  /** Sent with each fetch, for the service's logs. Default `<hostname>-<pid>`. */
  workerId?: string;
  /** Stop on SIGTERM and SIGINT. Default true. */
  handleSignals?: boolean;
  /** Errors the worker recovered from (a lost connection, a refused completion). Default: console.warn. */
  onError?: (err: unknown, context: string) => void;
}

interface Running {
  leased: LeasedJob;
  controller: AbortController;
}

/** A running worker. */
export class QueueWorker<P = Record<string, unknown>> {
  readonly #options: WorkerOptions<P>;
  readonly #client: NodeQueueClient;
  readonly #running = new Map<string, Running>();
  readonly #fetching = new AbortController();
  readonly #backoff;
  #stopping: Promise<void> | undefined;
  #slotFreed: (() => void) | undefined;
  readonly #loop: Promise<void>;
  readonly #beat: NodeJS.Timeout;
  readonly #offSignals: () => void;

  constructor(options: WorkerOptions<P>) {
    this.#options = options;
    this.#client = createQueueClient(options);
    this.#backoff = backoffOf(options.retry);
    this.#beat = setInterval(() => void this.#heartbeat(), options.heartbeatIntervalMs ?? 3000);
    const onSignal = () => void this.stop();
    if (options.handleSignals !== false) {
      process.once("SIGTERM", onSignal);
      process.once("SIGINT", onSignal);
    }
    this.#offSignals = () => {
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
    };
    this.#loop = this.#fetchLoop();
  }

  /** Jobs running now. */
  get running(): number {
    return this.#running.size;
  }

  /** Stops fetching, lets running jobs finish for up to `graceMs`, fails the rest as retryable. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#offSignals();
      this.#fetching.abort();
      this.#slotFreed?.();
      await this.#loop;
      const deadline = Date.now() + (this.#options.graceMs ?? 10_000);
      while (this.#running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      for (const r of this.#running.values()) r.controller.abort(new JobStopped("shutting-down"));
      while (this.#running.size > 0) await new Promise((r) => setTimeout(r, 20));
      clearInterval(this.#beat);
      this.#client.close();
    })();
    return this.#stopping;
  }

  #report(err: unknown, context: string): void {
    if (this.#options.onError) this.#options.onError(err, context);
    else console.warn(`queue-service worker: ${context}: ${err instanceof Error ? err.message : String(err)}`);
  }

  async #fetchLoop(): Promise<void> {
    const concurrency = this.#options.concurrency ?? 10;
    const waitMs = Math.min(this.#options.pollWaitMs ?? 20_000, 30_000);
    const workerId = this.#options.workerId ?? `${process.env.HOSTNAME ?? "worker"}-${process.pid}`;
    let failures = 0;
    while (!this.#fetching.signal.aborted) {
      const free = concurrency - this.#running.size;
      if (free <= 0) {
        await new Promise<void>((r) => (this.#slotFreed = r));
        continue;
      }
      try {
        const { jobs } = await this.#client.workers.fetchJobs(
          {
            types: this.#options.types,
            maxJobs: Math.min(free, 100),
            wait: { seconds: BigInt(Math.floor(waitMs / 1000)), nanos: (waitMs % 1000) * 1e6 },
            workerId,
          },
          { signal: this.#fetching.signal },
        );
        failures = 0;
        for (const leased of jobs) this.#run(leased);
      } catch (err) {
        if (this.#fetching.signal.aborted) return;
        this.#report(err, "fetch failed; retrying");
        const delay = ConnectError.from(err).code === Code.ResourceExhausted ? 1 : 0;
        await pause(this.#backoff, failures++ + delay).catch(() => {});
      }
    }
  }

  #run(leased: LeasedJob): void {
    const job = leased.job!;
    const token = leased.lease!.token;
    const controller = new AbortController();
    this.#running.set(token, { leased, controller });
    const workerJob: WorkerJob<P> = {
      id: job.id,
      type: job.type,
      payload: (job.payload ?? {}) as P,
      attempt: job.retryCount + 1,
      signal: controller.signal,
      job,
      progress: async (percent, message = "") => {
        try {
          await this.#client.workers.reportProgress({ leaseToken: token, percent: Math.max(0, Math.min(100, Math.round(percent))), message });
        } catch (err) {
          if (ConnectError.from(err).code === Code.FailedPrecondition) controller.abort(new JobStopped("lease-lost"));
          else this.#report(err, `progress of ${job.id}`);
        }
      },
    };
    void (async () => {
      try {
        let result: Record<string, unknown> | undefined;
        let error: unknown;
        let threw = false;
        try {
          result = (await this.#options.handler(workerJob)) ?? undefined;
        } catch (err) {
          error = err;
          threw = true;
        }
        const stopped = controller.signal.aborted ? (controller.signal.reason as JobStopped).reason : undefined;
        if (stopped === "lease-lost") return; // another attempt owns the job now
        if (!threw) {
          await this.#client.workers.completeJob({ leaseToken: token, result: (result ?? {}) as JsonObject });
          return;
        }
        const permanent = error instanceof PermanentJobError;
        const message = error instanceof Error ? error.message : String(error);
        await this.#client.workers.failJob({
          leaseToken: token,
          error: (stopped === "shutting-down" ? `worker shut down: ${message}` : message).slice(0, 1000) || "failed",
          retryable: !permanent,
          reason: permanent ? (error as PermanentJobError).reason : undefined,
        });
      } catch (err) {
        // LEASE_LOST: the attempt had already ended (expired, cancelled); anything else: the lease lapses and the job runs again.
        if (ConnectError.from(err).code !== Code.FailedPrecondition) this.#report(err, `recording the end of ${job.id}`);
      } finally {
        this.#running.delete(token);
        this.#slotFreed?.();
        this.#slotFreed = undefined;
      }
    })();
  }

  async #heartbeat(): Promise<void> {
    const held = [...this.#running.entries()].filter(([, r]) => !r.controller.signal.aborted);
    for (let i = 0; i < held.length; i += 500) {
      const batch = held.slice(i, i + 500);
      try {
        const { leases } = await this.#client.workers.heartbeatJobs({ leaseTokens: batch.map(([token]) => token) });
        for (const status of leases) {
          const r = this.#running.get(status.leaseToken);
          if (!r) continue;
          if (status.state === LeaseState.LOST) r.controller.abort(new JobStopped("lease-lost"));
          else if (status.state === LeaseState.CANCEL_REQUESTED) r.controller.abort(new JobStopped("cancel-requested"));
        }
      } catch (err) {
        this.#report(err, "heartbeat failed");
      }
    }
  }
}

/** Starts a worker; `await worker.stop()` ends it. */
export function createWorker<P = Record<string, unknown>>(options: WorkerOptions<P>): QueueWorker<P> {
  return new QueueWorker<P>(options);
}
