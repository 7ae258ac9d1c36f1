/**
 * The executor: runs claimed attempts within each queue's slots (its per-replica concurrency), each
 * with an AbortSignal, and keeps their leases.
 *
 * - Leases: every held attempt's heartbeat is refreshed every few seconds (one statement per pg-boss
 *   queue); an attempt the heartbeat no longer finds its own (the supervisor failed it, another
 *   worker took it) is aborted ("lease-lost") and records nothing. The supervisor fails a job whose
 *   worker died once its heartbeat is 10 s old.
 * - Stops: a cancel request reaches the handler through its signal (a notification, or the
 *   heartbeat's answer); so do the attempt's expiry and a shutdown whose grace period ran out.
 * - Ends: the handler's result or error becomes an outcome (outcomes.ts), which the completer
 *   records, fenced to the attempt.
 */
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Pool } from "../../db/pool.js";
import type { Logger } from "../../logger.js";
import { type Instruments, jobAttributes } from "../../telemetry/instruments.js";
import { contextFromTraceparent, traceIdOf } from "../../telemetry/trace-context.js";
import type { Listener } from "../listener.js";
import { JobStopped, type Processor, type StopReason } from "../processor.js";
import type { ProgressWriter } from "../progress.js";
import type { QueueDefinition, RegisteredJobType } from "../registry.js";
import type { Attempt, ClaimedJob, WorkQueries } from "../store/work-queries.js";
import type { Completer } from "./completer.js";
import { outcomeOf, stopReasonOf } from "./outcomes.js";

const tracer = trace.getTracer("queue-service");

/** How often held attempts' leases are refreshed (the lease is 10 s). */
export const HEARTBEAT_INTERVAL_MS = 3000;

/** A queue's slots: how many of its attempts run at once on this replica. */
class Slots {
  #used = 0;
  #waiters: (() => void)[] = [];
  constructor(readonly limit: number) {}
  free(): number {
    return Math.max(0, this.limit - this.#used);
  }
  take(n: number): void {
    this.#used += n;
  }
  release(): void {
    this.#used--;
    for (const w of this.#waiters.splice(0)) w();
  }
  whenFree(): Promise<void> {
    return this.free() > 0 ? Promise.resolve() : new Promise((r) => this.#waiters.push(r));
  }
  wakeAll(): void {
    for (const w of this.#waiters.splice(0)) w();
  }
}

interface Held extends Attempt {
  type: RegisteredJobType;
  controller: AbortController;
  expiry: NodeJS.Timeout;
}

export interface ExecutorOptions {
  queues: readonly QueueDefinition[];
  processors: ReadonlyMap<string, Processor<any>>;
  /** Attempts of a queue one replica runs at once. */
  concurrency(queue: string): number;
  completer: Completer;
  work: WorkQueries;
  pool: Pool;
  listener: Listener;
  logger: Logger;
  instruments?: Instruments;
  heartbeatIntervalMs?: number;
  /** Where `ctx.progress` writes (nowhere when unset). */
  progress?: ProgressWriter;
}

/** Runs attempts. */
export interface Executor {
  /** Free slots of a queue now. */
  free(queue: string): number;
  /** Resolves when a slot of the queue is free (or the executor stops). */
  whenFree(queue: string): Promise<void>;
  /** Runs claimed attempts of a type; their slots are taken at once. */
  run(type: RegisteredJobType, jobs: ClaimedJob[]): void;
  /** Attempts held now, per job type. */
  heldByType(): Map<RegisteredJobType, number>;
  held(): number;
  /** Lets running attempts finish for up to `graceMs`, stops the rest ("shutting-down"), and waits for their ends to be recorded. */
  stop(graceMs: number): Promise<void>;
}

/** Starts an executor (its heartbeat and its cancel listener). */
export function startExecutor(options: ExecutorOptions): Executor {
  const { processors, completer, logger } = options;
  const held = new Map<string, Held>();
  const slots = new Map(options.queues.map((q) => [q.name, new Slots(options.concurrency(q.name))]));
  const ends = new Set<Promise<unknown>>();
  let stopping = false;

  const stop = (h: Held, reason: StopReason) => {
    if (!h.controller.signal.aborted) h.controller.abort(new JobStopped(reason));
  };

  async function execute(type: RegisteredJobType, processor: Processor<any>, job: ClaimedJob): Promise<void> {
    const controller = new AbortController();
    const attempt = job.retryCount + 1;
    const attributes = jobAttributes(type.queue, type.type);
    const parent = contextFromTraceparent(job.data.traceparent);
    const span = tracer.startSpan(
      `job ${type.type}`,
      {
        kind: SpanKind.CONSUMER,
        attributes: { ...attributes, "job.id": job.id, "job.attempt": attempt, "job.root_id": job.data.rootJobId ?? job.id },
      },
      parent,
    );
    const started = performance.now();
    const metrics = options.instruments;
    metrics?.jobsStarted.add(1, attributes);
    if (job.startedOn && job.startAfter)
      metrics?.waitDuration.record(Math.max(0, job.startedOn.getTime() - new Date(job.startAfter).getTime()) / 1000, attributes);
    const h: Held = { id: job.id, retryCount: job.retryCount, type, controller, expiry: setTimeout(() => stop(h, "expired"), job.expireInSeconds * 1000) };
    held.set(job.id, h);
    const traceId = traceIdOf(span);
    // The job's logger, made when first used (most attempts log nothing).
    let jobLogger: Logger | undefined;
    const log = () =>
      (jobLogger ??= logger.child(traceId ? { jobId: job.id, type: type.type, attempt, traceId } : { jobId: job.id, type: type.type, attempt }));
    // Set once the handler's side effect is under way: a cancel can no longer make it CANCELLED.
    let sideEffect = false;
    let result: Record<string, unknown> | undefined;
    let error: unknown;
    let threw = false;
    try {
      result = await context.with(trace.setSpan(parent, span), () =>
        processor.process({
          id: job.id,
          rootJobId: job.data.rootJobId ?? job.id,
          type: type.type,
          attempt,
          payload: job.data.payload ?? {},
          principal: job.data.principal ?? "scheduler",
          admin: job.data.admin === true,
          signal: controller.signal,
          beginSideEffect: () => {
            sideEffect = true;
          },
          progress: async (percent, message = "") => {
            const p = Math.max(0, Math.min(100, Math.round(percent)));
            await options.progress?.report(type.bossQueue, { id: job.id, retryCount: job.retryCount }, { percent: p, message }).catch(() => false);
          },
          get logger() {
            return log();
          },
        }),
      );
    } catch (err) {
      threw = true;
      error = err;
    }
    const outcome = outcomeOf({
      result,
      error,
      threw,
      stop: stopReasonOf(controller.signal),
      sideEffect,
      attempt,
      retryCount: job.retryCount,
      retryLimit: job.retryLimit,
      at: new Date(),
    });
    let label: string = outcome.kind;
    try {
      if (threw) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      switch (outcome.kind) {
        case "completed":
          metrics?.jobsCompleted.add(1, attributes);
          // Written with the completions of concurrent attempts; the slot is free meanwhile.
          void completer.complete(type.bossQueue, h, outcome.result);
          break;
        case "lease-lost":
          label = "lease_lost";
          if (threw) log().warn("lease lost; the attempt's outcome is discarded");
          break;
        case "cancelled":
          metrics?.jobsCancelled.add(1, attributes);
          await completer.cancel(type.bossQueue, h, outcome.failure);
          break;
        case "failed":
          label = outcome.lastAttempt ? "failed" : "retried";
          log().warn({ reason: outcome.failure.reason, err: outcome.failure.message }, outcome.permanent ? "permanent failure" : "attempt failed");
          await completer.fail(type.bossQueue, h, outcome.failure, outcome.permanent);
          if (outcome.lastAttempt) {
            metrics?.jobsFailed.add(1, attributes);
            metrics?.jobsDeadLettered.add(1, attributes);
          } else metrics?.jobsRetried.add(1, attributes);
          break;
      }
    } finally {
      span.setAttribute("job.outcome", label);
      span.end();
      metrics?.runDuration.record((performance.now() - started) / 1000, { ...attributes, "job.outcome": label });
      clearTimeout(h.expiry);
      held.delete(job.id);
      slots.get(type.queue)!.release();
    }
  }

  async function heartbeat(): Promise<void> {
    const byQueue = new Map<string, Held[]>();
    for (const h of held.values()) {
      if (h.controller.signal.aborted) continue;
      byQueue.set(h.type.bossQueue, [...(byQueue.get(h.type.bossQueue) ?? []), h]);
    }
    for (const [bossQueue, list] of byQueue) {
      try {
        const answer = new Map((await options.work.heartbeat(options.pool, bossQueue, list)).map((a) => [a.id, a.cancel]));
        for (const h of list) {
          if (!held.has(h.id)) continue;
          if (!answer.has(h.id)) stop(h, "lease-lost");
          else if (answer.get(h.id)) stop(h, "cancel-requested");
        }
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "heartbeat failed");
      }
    }
  }

  const offCancel = options.listener.onCancel((jobId) => {
    const h = held.get(jobId);
    if (h) stop(h, "cancel-requested");
  });
  const beat = setInterval(() => void heartbeat(), options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS);
  beat.unref();

  return {
    free: (queue) => (stopping ? 0 : (slots.get(queue)?.free() ?? 0)),
    whenFree: (queue) => slots.get(queue)!.whenFree(),
    run(type, jobs) {
      const processor = processors.get(type.type);
      if (!processor) throw new Error(`no processor for ${type.type}`);
      slots.get(type.queue)!.take(jobs.length);
      for (const job of jobs) {
        const end = execute(type, processor, job).catch((err: Error) => logger.error({ err: err.message }, "job runner failed"));
        ends.add(end);
        void end.finally(() => ends.delete(end));
      }
    },
    heldByType() {
      const byType = new Map<RegisteredJobType, number>();
      for (const h of held.values()) byType.set(h.type, (byType.get(h.type) ?? 0) + 1);
      return byType;
    },
    held: () => held.size,
    async stop(graceMs) {
      stopping = true;
      for (const s of slots.values()) s.wakeAll();
      offCancel();
      const deadline = Date.now() + graceMs;
      while (held.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (held.size > 0) {
        logger.warn({ running: held.size }, "grace period over: interrupting running jobs");
        for (const h of held.values()) stop(h, "shutting-down");
        await Promise.race([Promise.all([...ends]), new Promise((r) => setTimeout(r, 2000))]);
      }
      clearInterval(beat);
      await completer.settled();
    },
  };
}
