/**
 * External workers (WorkerService): workers in other services, in any language, fetch jobs of the
 * types that name them, hold each attempt with a lease, and end it. Every step goes through the same
 * store paths and fences as the in-process workers (dispatch/): claims through pg-boss's fetch behind
 * the same pause and rate-limit gate, heartbeats that say whether the job was asked to cancel,
 * completions and failures fenced to the attempt (`retry_count` as claimed, state `active`), the same
 * outcome rules (a cancel request before the work is done ends the job cancelled).
 *
 * Waiting fetches (long polls) cost nothing while idle: a waiter sleeps until its pg-boss queue gets
 * a runnable job (the capture trigger's notification, on any replica), its wait runs out, or its
 * client goes away. A notification wakes one waiter of the queue, not all of them; a waiter that
 * filled its batch wakes the next, so a burst fans out and a single job wakes a single worker. Once a
 * second one waiter per queue looks anyway (delayed jobs and retries come due without a notification).
 */
import type { Pool } from "../db/pool.js";
import { inTransaction } from "../db/pool.js";
import { createBatcher } from "../db/statement-batcher.js";
import type { Logger } from "../logger.js";
import { createClaim } from "./claims.js";
import type { FetchGate } from "./dispatch/fetcher.js";
import { storedFailure } from "./dispatch/outcomes.js";
import { FailedPreconditionError, NotFoundError, PermissionError, ResourceExhaustedError, ValidationError } from "./errors.js";
import type { LeaseClaims, LeaseTokens } from "./lease-token.js";
import type { Listener } from "./listener.js";
import type { ProgressWriter } from "./progress.js";
import { type JobRegistry, mayWork, type RegisteredJobType } from "./registry.js";
import type { JobQueries } from "./store/job-queries.js";
import { type JobRecord, type JobRow, requireRecord } from "./store/job-record.js";
import { type Attempt, rowOfClaimed, type WorkQueries } from "./store/work-queries.js";
import type { Viewer } from "./viewer.js";

/** Longest a FetchJobs call may wait. */
export const MAX_FETCH_WAIT_MS = 30_000;
/** Most jobs one FetchJobs call takes. */
export const MAX_FETCH_JOBS = 100;
/** How often one waiter per queue looks for jobs that came due without a notification. */
export const DUE_POLL_MS = 1000;

/** A job handed to an external worker, with its lease. */
export interface LeasedRecord {
  record: JobRecord;
  token: string;
  expiresAt: Date;
}

/** A lease's state after a heartbeat. */
export interface LeaseState {
  token: string;
  state: "held" | "lost" | "cancel-requested";
  expiresAt?: Date;
}

export interface ExternalWorkDeps {
  pool: Pool;
  registry: JobRegistry;
  work: WorkQueries;
  jobs: JobQueries;
  gate: FetchGate;
  listener: Listener;
  leases: LeaseTokens;
  progress: ProgressWriter;
  logger: Logger;
  /** Waiting FetchJobs calls allowed on this replica, in total and per principal. */
  maxWaiting: number;
  maxWaitingPerPrincipal: number;
  /** Lease length (pg-boss's heartbeat timeout of the job's queue). */
  leaseSeconds: number;
}

interface Waiter {
  principal: string;
  queues: readonly string[];
  wake(): void;
}

/** External workers' use cases on one replica. */
export function createExternalWork(deps: ExternalWorkDeps) {
  const { pool, registry, work } = deps;
  const claimJobs = createClaim({ pool, registry, work });
  /** Waiters by pg-boss queue, oldest first. */
  const waiting = new Map<string, Waiter[]>();
  const perPrincipal = new Map<string, number>();
  let total = 0;
  let rotation = 0;

  function wakeOne(bossQueue: string): void {
    const list = waiting.get(bossQueue);
    const first = list?.shift();
    if (!first) return;
    list!.push(first);
    first.wake();
  }
  const offWork = deps.listener.onWork(wakeOne);
  const offResync = deps.listener.onResync(() => {
    for (const q of waiting.keys()) wakeOne(q);
  });
  const duePoll = setInterval(() => {
    for (const q of waiting.keys()) wakeOne(q);
  }, DUE_POLL_MS);
  duePoll.unref();

  function register(w: Waiter): () => void {
    if (total >= deps.maxWaiting) throw new ResourceExhaustedError(`too many waiting fetches on this replica (MAX_WAITING_FETCHES ${deps.maxWaiting})`, 1000);
    const mine = perPrincipal.get(w.principal) ?? 0;
    if (mine >= deps.maxWaitingPerPrincipal)
      throw new ResourceExhaustedError(`too many waiting fetches for ${w.principal} (MAX_WAITING_FETCHES_PER_PRINCIPAL ${deps.maxWaitingPerPrincipal})`, 1000);
    total++;
    perPrincipal.set(w.principal, mine + 1);
    for (const q of w.queues) waiting.set(q, [...(waiting.get(q) ?? []), w]);
    return () => {
      total--;
      const left = (perPrincipal.get(w.principal) ?? 1) - 1;
      if (left > 0) perPrincipal.set(w.principal, left);
      else perPrincipal.delete(w.principal);
      for (const q of w.queues) {
        const list = (waiting.get(q) ?? []).filter((x) => x !== w);
        if (list.length > 0) waiting.set(q, list);
        else waiting.delete(q);
      }
    };
  }

  /** The types a fetch names, each one the caller may work. */
  function typesFor(viewer: Viewer, names: readonly string[]): RegisteredJobType[] {
    const violations = names.flatMap((name, i) =>
      registry.type(name) ? [] : [{ field: `types[${i}]`, description: "is not a registered job type", reason: "UNKNOWN_JOB_TYPE" }],
    );
    if (violations.length > 0) throw new ValidationError(violations);
    const types = [...new Set(names)].map((n) => registry.type(n)!);
    const refused = types.filter((t) => !viewer.admin && !mayWork(t, viewer.name));
    if (refused.length > 0) throw new PermissionError(`${viewer.name} may not fetch ${refused.map((t) => t.type).join(", ")} (not in the type's workers list)`);
    return types;
  }

  /** Claims up to `max` jobs of `types`, behind the pause and rate-limit gate, starting with a different type each time. */
  async function claim(types: RegisteredJobType[], max: number): Promise<LeasedRecord[]> {
    const out: LeasedRecord[] = [];
    const start = rotation++ % types.length;
    for (let i = 0; i < types.length && out.length < max; i++) {
      const type = types[(start + i) % types.length]!;
      const wanted = max - out.length;
      const decision = await deps.gate.allow(type, wanted);
      if (decision.allowed <= 0) continue;
      const claimed = await claimJobs(type, decision.allowed);
      if (claimed.length < decision.allowed) deps.gate.giveBack?.(type, decision.allowed - claimed.length);
      for (const job of claimed) {
        const record = requireRecord(rowOfClaimed(job), registry);
        const token = deps.leases.sign({ bossQueue: type.bossQueue, id: job.id, retryCount: job.retryCount });
        out.push({ record, token, expiresAt: new Date(Date.now() + (job.heartbeatSeconds ?? deps.leaseSeconds) * 1000) });
      }
      // More may be waiting: let the next waiter of this queue look too.
      if (claimed.length === decision.allowed) wakeOne(type.bossQueue);
    }
    return out;
  }

  /** The attempt a token names, for a caller who may work its type. */
  function attemptOf(viewer: Viewer, token: string, field = "lease_token"): LeaseClaims & { type: RegisteredJobType } {
    const claims = deps.leases.verify(token, field);
    const found = registry.byBossQueue(claims.bossQueue);
    if (!found || found.deadLetter) throw new NotFoundError("the job type of this lease is no longer registered");
    if (!viewer.admin && !mayWork(found.type, viewer.name)) throw new PermissionError(`${viewer.name} may not work ${found.type.type}`);
    return { ...claims, type: found.type };
  }

  const leaseLost = (id: string) =>
    new FailedPreconditionError(`the lease of job ${id} is not held (it expired, the job was cancelled, or another attempt runs)`, "LEASE_LOST", {
      job_id: id,
    });

  const completions = new Map<string, (item: Attempt & { output: object }) => Promise<JobRow | undefined>>();
  const completionsOf = (bossQueue: string) => {
    let add = completions.get(bossQueue);
    if (!add) {
      add = createBatcher({
        maxBatch: 500,
        concurrency: 2,
        run: async (items: (Attempt & { output: object })[]) => {
          const rows = new Map((await work.completeReturning(pool, bossQueue, items)).map((r) => [r.id, r]));
          return items.map((i) => rows.get(i.id));
        },
      });
      completions.set(bossQueue, add);
    }
    return add;
  };

  async function recordOf(id: string, bossQueue: string): Promise<JobRecord> {
    const [row] = await deps.jobs.byIds(pool, [id], [bossQueue]);
    if (!row) throw new NotFoundError(`job ${id} not found`);
    return requireRecord(row, registry);
  }

  return {
    /**
     * Claims up to `max` runnable jobs of `typeNames`, waiting up to `waitMs` for one (returns as
     * soon as at least one is claimed). `signal`: the client went away (its place is freed at once).
     */
    async fetch(viewer: Viewer, typeNames: readonly string[], max: number, waitMs: number, signal: AbortSignal): Promise<LeasedRecord[]> {
      const types = typesFor(viewer, typeNames);
      const deadline = Date.now() + Math.min(waitMs, MAX_FETCH_WAIT_MS);
      let got = await claim(types, max);
      if (got.length > 0 || Date.now() >= deadline || signal.aborted) return got;
      let wake!: () => void;
      let woken = new Promise<void>((r) => (wake = r));
      const unregister = register({ principal: viewer.name, queues: types.map((t) => t.bossQueue), wake: () => wake() });
      const onAbort = () => wake();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        while (!signal.aborted) {
          const left = deadline - Date.now();
          if (left <= 0) return [];
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([woken, new Promise<void>((r) => (timer = setTimeout(r, left)))]);
          clearTimeout(timer);
          woken = new Promise<void>((r) => (wake = r));
          if (signal.aborted) return [];
          got = await claim(types, max);
          if (got.length > 0) return got;
        }
        return [];
      } finally {
        signal.removeEventListener("abort", onAbort);
        unregister();
      }
    },

    /** Extends leases; says for each whether it is still held, and whether its job was asked to cancel. */
    async heartbeat(viewer: Viewer, tokens: readonly string[]): Promise<LeaseState[]> {
      const attempts = tokens.map((t, i) => attemptOf(viewer, t, `lease_tokens[${i}]`));
      const byQueue = new Map<string, (Attempt & { token: string })[]>();
      for (const [i, a] of attempts.entries())
        byQueue.set(a.bossQueue, [...(byQueue.get(a.bossQueue) ?? []), { id: a.id, retryCount: a.retryCount, token: tokens[i]! }]);
      const answers = new Map<string, LeaseState>();
      for (const [bossQueue, list] of byQueue) {
        const held = new Map((await work.heartbeat(pool, bossQueue, list)).map((r) => [r.id, r]));
        for (const a of list) {
          const h = held.get(a.id);
          answers.set(
            a.token,
            h ? { token: a.token, state: h.cancel ? "cancel-requested" : "held", expiresAt: h.expires_at } : { token: a.token, state: "lost" },
          );
        }
      }
      return tokens.map((t) => answers.get(t)!);
    },

    /**
     * Completes the attempt (with the completions of concurrent calls, one statement per pg-boss
     * queue); a repeat of a completion already recorded for it returns the job unchanged.
     */
    async complete(viewer: Viewer, token: string, result: Record<string, unknown>): Promise<JobRecord> {
      const a = attemptOf(viewer, token);
      const done = await completionsOf(a.bossQueue)({ id: a.id, retryCount: a.retryCount, output: result });
      if (done) return requireRecord(done, registry);
      const record = await recordOf(a.id, a.bossQueue);
      // Not ours any more: fine only if this very attempt already completed (a retried call).
      if (record.state === "completed" && record.retryCount === a.retryCount) return record;
      throw leaseLost(a.id);
    },

    /**
     * Fails the attempt: retried by the queue's policy when `retryable` and retries are left, else
     * failed for good and dead-lettered; an attempt whose job was asked to cancel ends it cancelled.
     */
    async fail(viewer: Viewer, token: string, message: string, retryable: boolean, reason: string | undefined): Promise<JobRecord> {
      const a = attemptOf(viewer, token);
      const at = new Date();
      await inTransaction(pool, async (client) => {
        const held = await work.lockAttempt(client, a.bossQueue, a);
        if (!held) throw leaseLost(a.id);
        const attempt = a.retryCount + 1;
        if (held.cancel) {
          await work.cancel(
            client,
            a.bossQueue,
            a,
            storedFailure("cancelled while running (the worker stopped on the cancel request)", "CANCELLED", false, attempt, at),
          );
          return;
        }
        const failure = storedFailure(message, reason ?? (retryable ? "ERROR" : "PERMANENT"), retryable, attempt, at);
        await work.failOn(client, a.bossQueue, a, failure, !retryable);
      });
      return recordOf(a.id, a.bossQueue);
    },

    /** Records the attempt's progress (coalesced per job); LEASE_LOST when the attempt no longer runs. */
    async reportProgress(viewer: Viewer, token: string, percent: number, message: string): Promise<void> {
      const a = attemptOf(viewer, token);
      if (!(await deps.progress.report(a.bossQueue, a, { percent, message }))) throw leaseLost(a.id);
    },

    /** Waiting FetchJobs calls on this replica (a gauge). */
    waiting: () => total,

    stop(): void {
      clearInterval(duePoll);
      offWork();
      offResync();
      for (const list of waiting.values()) for (const w of list) w.wake();
    },
  };
}

export type ExternalWork = ReturnType<typeof createExternalWork>;
