/**
 * Group commit for AddJob: concurrent single-job adds share one transaction and one multi-row insert.
 *
 * The window is the time a transaction is in flight. A job submitted while fewer than `concurrency`
 * transactions run starts one at once (no added latency when idle); otherwise it waits, with
 * everything else submitted meanwhile, for the next free slot, and goes in that transaction (at most
 * `maxBatch` jobs). Every caller gets its own outcome (its idempotency conflict, its quota error)
 * and is answered only after the commit. If a shared transaction fails as a whole (a deadlock
 * between two batches retrying the same keys, say), each of its jobs is tried again alone, so one
 * job cannot fail another; a database outage fails them all at once.
 */
import { context, type Link, ROOT_CONTEXT, SpanKind, trace } from "@opentelemetry/api";
import { isDatabaseUnavailable } from "../db/errors.js";
import type { EnqueueEntry, EnqueueOutcome, Enqueuer } from "./enqueue.js";

export interface GroupCommitOptions {
  /** Transactions in flight at once. */
  concurrency: number;
  /** Jobs in one transaction at most. */
  maxBatch: number;
}

interface Waiting {
  entry: EnqueueEntry;
  link: Link | undefined;
  resolve(outcome: EnqueueOutcome): void;
  reject(err: unknown): void;
}

const tracer = trace.getTracer("queue-service");

/** Adds one job at a time, grouped with concurrent adds. */
export function createGroupCommit(enqueuer: Enqueuer, options: GroupCommitOptions) {
  const waiting: Waiting[] = [];
  let inFlight = 0;

  async function commit(batch: Waiting[]): Promise<void> {
    const links = batch.flatMap((w) => (w.link ? [w.link] : []));
    // The batch's queries belong to no single caller's trace: a span of their own, linked to each.
    const span = tracer.startSpan("enqueue batch", { kind: SpanKind.INTERNAL, links, attributes: { "job.batch_size": batch.length } }, ROOT_CONTEXT);
    try {
      const outcomes = await context.with(trace.setSpan(ROOT_CONTEXT, span), () =>
        enqueuer.add(
          batch.map((w) => w.entry),
          false,
        ),
      );
      for (const [i, w] of batch.entries()) w.resolve(outcomes[i]!);
    } catch (err) {
      if (batch.length === 1 || isDatabaseUnavailable(err)) {
        for (const w of batch) w.reject(err);
      } else {
        await Promise.all(batch.map((w) => commit([w])));
      }
    } finally {
      span.end();
    }
  }

  function pump(): void {
    while (inFlight < options.concurrency && waiting.length > 0) {
      const batch = waiting.splice(0, options.maxBatch);
      inFlight++;
      void commit(batch).finally(() => {
        inFlight--;
        pump();
      });
    }
  }

  return {
    /** Adds `entry` and resolves with its outcome once its transaction committed. */
    add(entry: EnqueueEntry): Promise<EnqueueOutcome> {
      return new Promise((resolve, reject) => {
        const spanContext = trace.getActiveSpan()?.spanContext();
        waiting.push({ entry, link: spanContext ? { context: spanContext } : undefined, resolve, reject });
        pump();
      });
    },
  };
}

export type GroupCommit = ReturnType<typeof createGroupCommit>;
