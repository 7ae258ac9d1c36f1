/**
 * The workers: for each job type with a processor, a loop that claims jobs through pg-boss's fetch and
 * runs them, within the per-queue concurrency.
 *
 * - Dispatch: a loop sleeps until its pg-boss queue gets a runnable job (a notification from the
 *   capture trigger, on any replica) or its poll interval passes (delayed jobs and retries send no
 *   notification), and fetches as many jobs as it has free slots, at once again while batches come
 *   back full.
 * - Leases: every running attempt's heartbeat is refreshed every few seconds; an attempt whose
 *   heartbeat finds the job no longer its own (the supervisor failed it, another worker took it) is
 *   aborted. The supervisor fails a job whose worker died once its heartbeat is 10 s old.
 * - Fencing: every completion or failure names the attempt (`retry_count` as fetched), so a worker
 *   that lost its lease cannot settle the next attempt.
 * - Completions are written in batches: while one batch is being written, the next gathers.
 * - Cancel requests reach a running handler through its AbortSignal (a notification, or the heartbeat).
 */
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { JobWithMetadata, PgBoss } from "pg-boss";
import { jobAttributes, type Instruments } from "../telemetry/instruments.js";
import { contextFromTraceparent, traceIdOf } from "../telemetry/trace-context.js";
import type { Pool, PoolClient } from "../db/pool.js";
import type { Logger } from "../logger.js";
import { JobStopped, PermanentJobError, type Processor, type StopReason } from "../workers/processor.js";
import type { Envelope } from "./job-record.js";
import type { Listener } from "./listener.js";
import type { Attempt, WorkQueries } from "./queries/work-queries.js";
import type { JobRegistry, RegisteredJobType } from "./registry.js";

const tracer = trace.getTracer("queue-service");

/** How often running attempts' leases are refreshed (the lease is 10 s). */
export const HEARTBEAT_INTERVAL_MS = 3000;
/** Most jobs one fetch claims. */
export const FETCH_BATCH_MAX = 100;
/** Most completions one statement writes. */
export const COMPLETION_BATCH_MAX = 500;
/** Longest stored error message. */
export const MAX_ERROR_MESSAGE = 1000;

/** Decides, before a fetch, how many jobs a type may claim now (pause, rate limits). */
export interface FetchGate {
  /**
   * How many of `wanted` jobs of `type` may be fetched now. With none allowed, the loop sleeps
   * `retryAfterMs` (at most its poll interval), or until woken (a resume wakes the queue's loops).
   */
  allow(type: RegisteredJobType, wanted: number): Promise<{ allowed: number; retryAfterMs?: number }> | { allowed: number; retryAfterMs?: number };
  /** Returns unused permits (a fetch claimed fewer jobs than allowed). */
  giveBack?(type: RegisteredJobType, unused: number): void;
}

export interface DispatcherOptions {
  boss: PgBoss;
  pool: Pool;
  registry: JobRegistry;
  processors: ReadonlyMap<string, Processor<any>>;
  listener: Listener;
  work: WorkQueries;
  logger: Logger;
  /** Jobs of a queue one replica runs at once. */
  concurrency(queue: string): number;
  pollIntervalMs: number;
  gate?: FetchGate;
  heartbeatIntervalMs?: number;
  instruments?: Instruments;
}

interface Running extends Attempt {
  type: RegisteredJobType;
  controller: AbortController;
  expiry: NodeJS.Timeout;
}

/** The workers of one replica. */
export interface Dispatcher {
  /** Attempts running now. */
  running(): number;
  /** Attempts running now, per job type. */
  runningByType(): Map<RegisteredJobType, number>;
  /** Wakes the loops of a queue (or all), e.g. after a resume. */
  wake(queue?: string): void;
  /** Stops fetching, lets running jobs finish for up to `graceMs`, then aborts the rest. */
  stop(graceMs: number): Promise<void>;
}

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
    this.#waiters.splice(0).forEach((w) => w());
  }
  whenFree(): Promise<void> {
    return this.free() > 0 ? Promise.resolve() : new Promise((r) => this.#waiters.push(r));
  }
  wakeAll(): void {
    this.#waiters.splice(0).forEach((w) => w());
  }
}

/** Starts the workers. */
export function startDispatcher(options: DispatcherOptions): Dispatcher {
  const { boss, pool, registry, processors, listener, work, logger } = options;
  const running = new Map<string, Running>();
  const slots = new Map(registry.queues.map((q) => [q.name, new Slots(options.concurrency(q.name))]));
  const wakers = new Map<string, () => void>();
  const dirty = new Set<string>();
  const settling = new Set<Promise<unknown>>();
  let stopping = false;

  const db = (client: { query: Pool["query"] }) => ({
    executeSql: (text: string, values?: unknown[]) => client.query(text, values) as Promise<{ rows: any[] }>,
  });

  // Completions, batched per pg-boss queue.
  const pendingCompletions = new Map<string, (Attempt & { output: unknown })[]>();
  const flushing = new Map<string, Promise<void>>();
  const completeLater = (bossQueue: string, done: Attempt & { output: unknown }) => {
    const list = pendingCompletions.get(bossQueue) ?? [];
    list.push(done);
    pendingCompletions.set(bossQueue, list);
    startFlush(bossQueue);
  };
  function startFlush(bossQueue: string): void {
    if (flushing.has(bossQueue)) return;
    const p = flushCompletions(bossQueue).finally(() => {
      flushing.delete(bossQueue);
      // A completion queued after the loop's last look, before it was marked done, is not left behind.
      if ((pendingCompletions.get(bossQueue)?.length ?? 0) > 0) startFlush(bossQueue);
    });
    flushing.set(bossQueue, p);
  }
  async function flushCompletions(bossQueue: string): Promise<void> {
    await Promise.resolve(); // let the completions of this tick join the batch
    for (;;) {
      const list = pendingCompletions.get(bossQueue) ?? [];
      if (list.length === 0) return;
      const batch = list.splice(0, COMPLETION_BATCH_MAX);
      for (let attempt = 1; ; attempt++) {
        try {
          await work.complete(pool, bossQueue, batch);
          break;
        } catch (err) {
          if (attempt >= 5) {
            // The attempts stay active; their leases run out and they are retried (money jobs are idempotent by root).
            logger.error({ err: (err as Error).message, jobs: batch.length }, "could not record completions");
            break;
          }
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    }
  }

  const failureOutput = (message: string, reason: string, retryable: boolean, attempt: number) => ({
    message: message.length > MAX_ERROR_MESSAGE ? `${message.slice(0, MAX_ERROR_MESSAGE)}...` : message,
    reason,
    retryable,
    attempt,
    occurredAt: new Date().toISOString(),
  });

  async function fail(r: Running, output: ReturnType<typeof failureOutput>, permanent: boolean): Promise<void> {
    let client: PoolClient | undefined;
    let broken: Error | undefined;
    try {
      client = await pool.connect();
      await client.query("BEGIN");
      if (permanent) await work.exhaustRetries(client, r.type.bossQueue, r);
      await boss.fail(r.type.bossQueue, { id: r.id, retryCount: r.retryCount }, output, { db: db(client) });
      await client.query("COMMIT");
    } catch (err) {
      broken = err as Error;
      await client?.query("ROLLBACK").catch(() => {});
      logger.error({ err: (err as Error).message, jobId: r.id }, "could not record a failure; the lease will expire and the job will be retried");
    } finally {
      client?.release(broken);
    }
  }

  async function run(type: RegisteredJobType, processor: Processor<any>, job: JobWithMetadata<Envelope>): Promise<void> {
    const controller = new AbortController();
    const attempt = job.retryCount + 1;
    const attributes = jobAttributes(type.queue, type.type);
    const parent = contextFromTraceparent(job.data.traceparent);
    const span = tracer.startSpan(`job ${type.type}`, {
      kind: SpanKind.CONSUMER,
      attributes: { ...attributes, "job.id": job.id, "job.attempt": attempt, "job.root_id": job.data.rootJobId ?? job.id },
    }, parent);
    const started = performance.now();
    let outcome = "completed";
    options.instruments?.jobsStarted.add(1, attributes);
    if (job.startedOn && job.startAfter) options.instruments?.waitDuration.record(Math.max(0, job.startedOn.getTime() - new Date(job.startAfter).getTime()) / 1000, attributes);
    const r: Running = {
      id: job.id,
      retryCount: job.retryCount,
      type,
      controller,
      expiry: setTimeout(() => stop(r, "expired"), job.expireInSeconds * 1000),
    };
    running.set(job.id, r);
    const traceId = traceIdOf(span);
    // Set once the handler's side effect is under way: a cancel can no longer make it CANCELLED.
    let sideEffect = false;
    // The job's logger, made when first used (most attempts log nothing).
    let jobLogger: Logger | undefined;
    const log = () => (jobLogger ??= logger.child(traceId ? { jobId: job.id, type: type.type, attempt, traceId } : { jobId: job.id, type: type.type, attempt }));
    try {
      const result = await context.with(trace.setSpan(parent, span), () => processor.process({
        id: job.id,
        rootJobId: job.data.rootJobId ?? job.id,
        type: type.type,
        attempt,
        payload: job.data.payload ?? {},
        principal: job.data.principal ?? "scheduler",
        admin: job.data.admin === true,
        signal: controller.signal,
        beginSideEffect: () => void (sideEffect = true),
        get logger() {
          return log();
        },
      }));
      if (controller.signal.reason instanceof JobStopped && controller.signal.reason.reason === "lease-lost") {
        outcome = "lease_lost";
        return;
      }
      completeLater(type.bossQueue, { id: job.id, retryCount: job.retryCount, output: result ?? {} });
      options.instruments?.jobsCompleted.add(1, attributes);
    } catch (err) {
      const stopped = controller.signal.aborted && controller.signal.reason instanceof JobStopped ? controller.signal.reason.reason : undefined;
      const message = err instanceof Error ? err.message : String(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message });
      if (stopped === "lease-lost") {
        outcome = "lease_lost";
        log().warn("lease lost; the attempt's outcome is discarded");
      } else if (stopped === "cancel-requested" && !sideEffect && !(err instanceof PermanentJobError)) {
        outcome = "cancelled";
        options.instruments?.jobsCancelled.add(1, attributes);
        await work.cancel(pool, type.bossQueue, r, failureOutput("cancelled while running, before its side effect", "CANCELLED", false, attempt)).catch((e: Error) =>
          log().error({ err: e.message }, "could not record the cancellation"),
        );
      } else if (err instanceof PermanentJobError) {
        outcome = "failed";
        log().warn({ reason: err.reason, err: message }, "permanent failure");
        await fail(r, failureOutput(message, err.reason, false, attempt), true);
        options.instruments?.jobsFailed.add(1, attributes);
        options.instruments?.jobsDeadLettered.add(1, attributes);
      } else {
        const reason = stopped === "expired" ? "JOB_EXPIRED" : stopped === "shutting-down" ? "INTERRUPTED" : ((err as { reason?: string }).reason ?? "ERROR");
        const last = job.retryCount >= job.retryLimit;
        outcome = last ? "failed" : "retried";
        log().warn({ reason, err: message }, "attempt failed");
        await fail(r, failureOutput(message, reason, true, attempt), false);
        if (last) {
          options.instruments?.jobsFailed.add(1, attributes);
          options.instruments?.jobsDeadLettered.add(1, attributes);
        } else options.instruments?.jobsRetried.add(1, attributes);
      }
    } finally {
      span.setAttribute("job.outcome", outcome);
      span.end();
      options.instruments?.runDuration.record((performance.now() - started) / 1000, { ...attributes, "job.outcome": outcome });
      clearTimeout(r.expiry);
      running.delete(job.id);
      slots.get(type.queue)!.release();
    }
  }

  function stop(r: Running, reason: StopReason): void {
    if (!r.controller.signal.aborted) r.controller.abort(new JobStopped(reason));
  }

  function sleep(bossQueue: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakers.delete(bossQueue);
        resolve();
      }
      wakers.set(bossQueue, done);
    });
  }

  async function loop(type: RegisteredJobType, processor: Processor<any>): Promise<void> {
    const queueSlots = slots.get(type.queue)!;
    while (!stopping) {
      try {
        await queueSlots.whenFree();
        if (stopping) return;
        const wanted = Math.min(queueSlots.free(), FETCH_BATCH_MAX);
        const decision = options.gate ? await options.gate.allow(type, wanted) : { allowed: wanted };
        const allowed = decision.allowed;
        if (allowed <= 0) {
          await sleep(type.bossQueue, Math.min(options.pollIntervalMs, Math.max(10, decision.retryAfterMs ?? options.pollIntervalMs)));
          continue;
        }
        dirty.delete(type.bossQueue);
        const jobs = await boss.fetch<Envelope>(type.bossQueue, { batchSize: allowed, includeMetadata: true });
        if (allowed > jobs.length) options.gate?.giveBack?.(type, allowed - jobs.length);
        queueSlots.take(jobs.length);
        for (const job of jobs) {
          const p = run(type, processor, job).catch((err: Error) => logger.error({ err: err.message }, "job runner failed"));
          settling.add(p);
          void p.finally(() => settling.delete(p));
        }
        if (jobs.length === 0 && !dirty.has(type.bossQueue) && !stopping) await sleep(type.bossQueue, options.pollIntervalMs);
      } catch (err) {
        logger.warn({ err: (err as Error).message, queue: type.bossQueue }, "fetch failed; retrying");
        if (!stopping) await sleep(type.bossQueue, options.pollIntervalMs);
      }
    }
  }

  async function heartbeat(): Promise<void> {
    const byQueue = new Map<string, Running[]>();
    for (const r of running.values()) {
      if (r.controller.signal.aborted) continue;
      byQueue.set(r.type.bossQueue, [...(byQueue.get(r.type.bossQueue) ?? []), r]);
    }
    for (const [bossQueue, list] of byQueue) {
      try {
        const held = new Map((await work.heartbeat(pool, bossQueue, list)).map((h) => [h.id, h.cancel]));
        for (const r of list) {
          if (!running.has(r.id)) continue;
          if (!held.has(r.id)) stop(r, "lease-lost");
          else if (held.get(r.id)) stop(r, "cancel-requested");
        }
      } catch (err) {
        logger.warn({ err: (err as Error).message }, "heartbeat failed");
      }
    }
  }

  const offWork = listener.onWork((bossQueue) => {
    dirty.add(bossQueue);
    wakers.get(bossQueue)?.();
  });
  const offCancel = listener.onCancel((jobId) => {
    const r = running.get(jobId);
    if (r) stop(r, "cancel-requested");
  });
  const wakeAll = () => {
    for (const t of registry.types) dirty.add(t.bossQueue);
    for (const w of [...wakers.values()]) w();
  };
  const offResync = listener.onResync(wakeAll);
  const beat = setInterval(() => void heartbeat(), options.heartbeatIntervalMs ?? HEARTBEAT_INTERVAL_MS);
  beat.unref();

  const loops = registry.types.flatMap((type) => {
    const processor = processors.get(type.type);
    return processor ? [loop(type, processor)] : [];
  });

  return {
    running: () => running.size,
    runningByType() {
      const byType = new Map<RegisteredJobType, number>();
      for (const r of running.values()) byType.set(r.type, (byType.get(r.type) ?? 0) + 1);
      return byType;
    },
    wake(queue) {
      if (!queue) return wakeAll();
      for (const t of registry.typesOf(queue)) {
        dirty.add(t.bossQueue);
        wakers.get(t.bossQueue)?.();
      }
    },
    async stop(graceMs) {
      stopping = true;
      offWork();
      offCancel();
      offResync();
      for (const s of slots.values()) s.wakeAll();
      for (const w of [...wakers.values()]) w();
      await Promise.all(loops);
      const deadline = Date.now() + graceMs;
      while (running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      if (running.size > 0) {
        logger.warn({ running: running.size }, "grace period over: interrupting running jobs");
        for (const r of running.values()) stop(r, "shutting-down");
        await Promise.race([Promise.all([...settling]), new Promise((r) => setTimeout(r, 2000))]);
      }
      clearInterval(beat);
      while (flushing.size > 0) await Promise.all([...flushing.values()]);
    },
  };
}
