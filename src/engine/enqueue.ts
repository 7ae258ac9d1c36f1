/**
 * Adding jobs: idempotency keys claimed and the job rows inserted in one transaction, so an
 * acknowledged job is committed and a repeated key never makes a second job.
 *
 * Keys are scoped to the principal. The same key with the same request returns the original job
 * (`deduplicated`), also to every loser of a concurrent race: a second transaction claiming a key
 * waits on the first's uncommitted claim, then reads the committed one. The same key with a
 * different request is ALREADY_EXISTS with reason IDEMPOTENCY_KEY_REUSED and the original job's id.
 */
import { randomUUID } from "node:crypto";
import { inTransaction, type Pool, type PoolClient } from "../db/pool.js";
import type { QuotaChecker } from "./enqueue-quota.js";
import { AlreadyExistsError, FailedPreconditionError, InternalError, NotFoundError } from "./errors.js";
import { hasParents, type NewJob } from "./new-job.js";
import type { IdempotencyQueries } from "./queries/idempotency-queries.js";
import type { JobRegistry } from "./registry.js";
import { LEASE_SECONDS, QUEUED_RETENTION_SECONDS } from "./store/boss.js";
import type { DependencyQueries, Edge } from "./store/dependency-queries.js";
import type { InsertedJob, JobInsertRow, JobQueries } from "./store/job-queries.js";
import { type Envelope, type JobRecord, type JobRow, requireRecord } from "./store/job-record.js";

/** The reason an idempotency key conflict carries. */
export const IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED";

/** One job to add, and who adds it. */
export interface EnqueueEntry {
  principal: string;
  /** The principal is an admin (recorded with the job: admins may refund any payment). */
  admin?: boolean;
  /** Admins are not held to enqueue quotas. */
  exemptFromQuotas?: boolean;
  job: NewJob;
}

/** An entry of an atomic batch failed; nothing was written. */
export class BatchEntryError extends Error {
  override name = "BatchEntryError";
  constructor(
    readonly index: number,
    override readonly cause: Error,
  ) {
    super(cause.message);
  }
}

/** The outcome of one entry. */
export type EnqueueOutcome = { ok: true; record: JobRecord; deduplicated: boolean } | { ok: false; error: Error };

export interface EnqueueDeps {
  pool: Pool;
  registry: JobRegistry;
  jobs: JobQueries;
  keys: IdempotencyQueries;
  dependencies: DependencyQueries;
  idempotencyWindowSeconds: number;
  quotas?: QuotaChecker;
}

/** An entry's parents, resolved: every parent's id, and how many it still waits for. */
interface Parents {
  ids: string[];
  pending: number;
  edges: Edge[];
}

type Plan = { kind: "insert"; id: string } | { kind: "existing"; jobId: string } | { kind: "follow"; leader: number } | { kind: "error"; error: Error };

/** The enqueue operation. */
export function createEnqueuer(deps: EnqueueDeps) {
  const { registry, jobs, keys, idempotencyWindowSeconds: windowSeconds } = deps;

  const insertRow = (id: string, { principal, admin, job }: EnqueueEntry, parents?: Parents): JobInsertRow => {
    const policy = job.type.queueDefinition.policy;
    const envelope: Envelope = { payload: job.payload, rootJobId: id, principal };
    if (admin) envelope.admin = true;
    if (job.idempotencyKey !== undefined) envelope.idempotencyKey = job.idempotencyKey;
    if (job.traceparent !== undefined) envelope.traceparent = job.traceparent;
    if (parents) envelope.dependsOn = parents.ids;
    if (parents && job.onParentFailure === "run") envelope.onParentFailure = "run";
    if (job.concurrencyKey !== undefined) envelope.concurrencyKey = job.concurrencyKey;
    return {
      id,
      bossQueue: job.type.bossQueue,
      data: envelope,
      priority: job.priority,
      startAt: job.startAt ?? null,
      delayMs: job.delayMs,
      retryLimit: job.retryLimit,
      retryDelaySeconds: job.retryDelaySeconds,
      retryBackoff: job.retryBackoff,
      retryDelayMaxSeconds: policy.retryDelayMaxSeconds,
      expireInSeconds: job.expireInSeconds,
      deleteAfterSeconds: policy.deleteAfterSeconds,
      retentionSeconds: QUEUED_RETENTION_SECONDS,
      deadLetter: job.type.deadLetterBossQueue,
      heartbeatSeconds: LEASE_SECONDS,
      pendingParents: parents?.pending ?? 0,
      groupId: job.concurrencyKey ?? null,
    };
  };

  const reused = (key: string, jobId: string) =>
    new AlreadyExistsError(`idempotency key ${JSON.stringify(key)} was already used for a different request (job ${jobId})`, IDEMPOTENCY_KEY_REUSED, {
      job_id: jobId,
    });

  /** Decides, inside the transaction, what each entry becomes. */
  async function plan(client: PoolClient, entries: EnqueueEntry[]): Promise<Plan[]> {
    const plans: Plan[] = entries.map(() => ({ kind: "insert", id: randomUUID() }));
    // Entries sharing a key within the batch are decided by the key's holder once it is known.
    const leaders = new Map<string, number>();
    const followers: { index: number; leader: number }[] = [];
    entries.forEach((e, i) => {
      const key = e.job.idempotencyKey;
      if (key === undefined) return;
      const scoped = `${e.principal}\u0000${key}`;
      const leader = leaders.get(scoped);
      if (leader === undefined) leaders.set(scoped, i);
      else followers.push({ index: i, leader });
    });
    // Who holds each leader's key: the leader's new job, or an earlier job.
    const holders = new Map<number, { jobId: string; requestHash: Buffer }>();
    const byPrincipal = new Map<string, number[]>();
    for (const i of leaders.values()) {
      const principal = entries[i]!.principal;
      byPrincipal.set(principal, [...(byPrincipal.get(principal) ?? []), i]);
    }
    for (const [principal, indexes] of byPrincipal) {
      const claims = indexes.map((i) => ({
        key: entries[i]!.job.idempotencyKey!,
        requestHash: entries[i]!.job.requestHash!,
        jobId: (plans[i] as { id: string }).id,
      }));
      const claimed = await keys.claim(client, principal, claims, windowSeconds);
      for (const c of claims) if (claimed.has(c.key)) holders.set(indexes[claims.indexOf(c)]!, { jobId: c.jobId, requestHash: c.requestHash });
      const unclaimed = indexes.filter((i) => !claimed.has(entries[i]!.job.idempotencyKey!));
      if (unclaimed.length === 0) continue;
      const taken = new Map(
        (
          await keys.taken(
            client,
            principal,
            unclaimed.map((i) => entries[i]!.job.idempotencyKey!),
            windowSeconds,
          )
        ).map((t) => [t.key, t]),
      );
      for (const i of unclaimed) {
        const job = entries[i]!.job;
        const t = taken.get(job.idempotencyKey!);
        // The key's holder was swept between the claim and this read: nothing else can hold it now.
        if (!t) throw new InternalError(`idempotency key ${JSON.stringify(job.idempotencyKey)} changed hands during the request; retry`);
        holders.set(i, { jobId: t.jobId, requestHash: t.requestHash });
        plans[i] = t.requestHash.equals(job.requestHash!)
          ? { kind: "existing", jobId: t.jobId }
          : { kind: "error", error: reused(job.idempotencyKey!, t.jobId) };
      }
    }
    for (const { index, leader } of followers) {
      const job = entries[index]!.job;
      const holder = holders.get(leader)!;
      if (!holder.requestHash.equals(job.requestHash!)) plans[index] = { kind: "error", error: reused(job.idempotencyKey!, holder.jobId) };
      else plans[index] = plans[leader]!.kind === "insert" ? { kind: "follow", leader } : { kind: "existing", jobId: holder.jobId };
    }
    // Quotas count only the jobs this call would really add.
    const quotas = deps.quotas;
    if (quotas) {
      const groups = new Map<string, number[]>();
      plans.forEach((p, i) => {
        const e = entries[i]!;
        if (p.kind !== "insert" || e.exemptFromQuotas || !quotas.applies(e.job.type)) return;
        const k = `${e.job.type.type}\u0000${e.principal}`;
        groups.set(k, [...(groups.get(k) ?? []), i]);
      });
      for (const indexes of groups.values()) {
        const first = entries[indexes[0]!]!;
        const refusals = await quotas.check(
          client,
          first.job.type,
          first.principal,
          indexes.map((i) => entries[i]!.job.payload),
        );
        refusals.forEach((error, n) => {
          if (error) plans[indexes[n]!] = { kind: "error", error };
        });
      }
    }
    return plans;
  }

  const toRecord = (row: JobRow): JobRecord => requireRecord(row, registry);

  /** The row of a job just inserted: what was sent, with what the database decided. */
  const insertedRow = (sent: JobInsertRow, got: InsertedJob): JobRow => ({
    id: got.id,
    name: sent.bossQueue,
    data: sent.data as Envelope,
    state: "created",
    priority: sent.priority,
    retry_count: 0,
    retry_limit: sent.retryLimit,
    retry_delay: sent.retryDelaySeconds,
    retry_backoff: sent.retryBackoff,
    expire_seconds: sent.expireInSeconds,
    created_on: got.created_on,
    start_after: got.start_after,
    started_on: null,
    completed_on: null,
    output: null,
    dead_letter: sent.deadLetter,
    source_id: null,
    source_root_id: null,
    source_retry_count: null,
    source_output: null,
    blocked: sent.pendingParents > 0,
  });

  /** Inserts rows; returns the job rows by id. */
  async function insertRows(db: PoolClient | Pool, rows: JobInsertRow[]): Promise<Map<string, JobRow>> {
    const got = new Map((await jobs.insert(db, rows)).map((r) => [r.id, r]));
    return new Map(rows.map((r) => [r.id, insertedRow(r, got.get(r.id)!)]));
  }

  /** Whether an entry needs nothing checked before its insert (no idempotency key, no quota, no parents). */
  const plain = (e: EnqueueEntry) => e.job.idempotencyKey === undefined && !hasParents(e.job) && (e.exemptFromQuotas || !deps.quotas?.applies(e.job.type));

  /**
   * Resolves the parents of the entries to insert, inside the transaction: each must exist and be
   * the caller's own (an admin's: any), and is share-locked until the commit, so that it cannot
   * finish between this check and the child's edges. An entry whose parent is missing, or failed
   * while the entry would be cancelled for it, becomes an error.
   */
  async function resolveParents(client: PoolClient, entries: EnqueueEntry[], plans: Plan[]): Promise<Map<number, Parents>> {
    const resolved = new Map<number, Parents>();
    const wanted = plans.flatMap((p, i) => (p.kind === "insert" && hasParents(entries[i]!.job) ? [i] : []));
    if (wanted.length === 0) return resolved;
    const idOfEntry = (index: number): string | undefined => {
      const p = plans[index]!;
      if (p.kind === "insert") return p.id;
      if (p.kind === "existing") return p.jobId;
      if (p.kind === "follow") return idOfEntry(p.leader);
      return undefined;
    };
    const lookups = new Set<string>();
    for (const i of wanted) {
      for (const id of entries[i]!.job.dependsOn ?? []) lookups.add(id);
      for (const index of entries[i]!.job.dependsOnIndexes ?? []) {
        const p = plans[index]!;
        if (p.kind !== "insert") {
          const id = idOfEntry(index);
          if (id) lookups.add(id);
        }
      }
    }
    const liveQueues = registry.types.map((t) => t.bossQueue);
    const found = new Map((await deps.dependencies.lockParents(client, [...lookups], liveQueues)).map((r) => [r.id, r]));
    for (const i of wanted) {
      const { principal, admin, job } = entries[i]!;
      const childId = (plans[i] as { id: string }).id;
      const childName = job.type.bossQueue;
      const run = job.onParentFailure === "run";
      const parents: Parents = { ids: [], pending: 0, edges: [] };
      let error: Error | undefined;
      const addParent = (id: string, field: string, inBatch: boolean) => {
        if (error || parents.ids.includes(id)) return;
        const row = found.get(id);
        if (inBatch && !row) {
          // A parent inserted by this same call: waiting to run.
          parents.ids.push(id);
          parents.pending++;
          parents.edges.push({ parentId: id, childId, childName, settled: false });
          return;
        }
        if (!row || (!admin && row.principal !== principal)) {
          error = new NotFoundError(`${field}: job ${id} not found`);
          return;
        }
        const finished = row.state === "completed" || row.state === "failed" || row.state === "cancelled";
        if ((row.state === "failed" || row.state === "cancelled") && !run) {
          error = new FailedPreconditionError(
            `${field}: job ${id} is already ${row.state}; set on_parent_failure to PARENT_FAILURE_POLICY_RUN to run anyway`,
            "PARENT_FAILED",
          );
          return;
        }
        parents.ids.push(id);
        if (!finished) parents.pending++;
        parents.edges.push({ parentId: id, childId, childName, settled: finished });
      };
      for (const [k, id] of (job.dependsOn ?? []).entries()) addParent(id, `options.depends_on[${k}]`, false);
      (job.dependsOnIndexes ?? []).forEach((index, k) => {
        const id = idOfEntry(index);
        if (id === undefined) error ??= new FailedPreconditionError(`options.depends_on_batch_indexes[${k}]: entry ${index} was not added`, "PARENT_NOT_ADDED");
        else addParent(id, `options.depends_on_batch_indexes[${k}]`, plans[index]!.kind === "insert");
      });
      if (error) plans[i] = { kind: "error", error };
      else resolved.set(i, parents);
    }
    return resolved;
  }

  /**
   * Adds jobs in one transaction. `atomic`: any entry's error rolls everything back and is thrown
   * (as a BatchEntryError naming the entry);
   * otherwise each entry gets its own outcome and the others commit.
   */
  async function add(entries: EnqueueEntry[], atomic: boolean): Promise<EnqueueOutcome[]> {
    if (entries.every(plain)) {
      // Nothing to decide: one INSERT statement, atomic on its own, in one round trip.
      const rows = entries.map((e) => insertRow(randomUUID(), e));
      const inserted = await insertRows(deps.pool, rows);
      return rows.map((r) => ({ ok: true, record: toRecord(inserted.get(r.id)!), deduplicated: false }));
    }
    return inTransaction(deps.pool, async (client) => {
      const plans = await plan(client, entries);
      const parents = await resolveParents(client, entries, plans);
      if (atomic) {
        const index = plans.findIndex((p) => p.kind === "error");
        if (index >= 0) throw new BatchEntryError(index, (plans[index] as Extract<Plan, { kind: "error" }>).error);
      }
      // A child whose parent entry failed (not atomic) fails with it.
      for (const [i, p] of plans.entries()) {
        if (p.kind !== "insert") continue;
        const missing = (entries[i]!.job.dependsOnIndexes ?? []).findIndex((index) => plans[index]!.kind === "error");
        if (missing >= 0) {
          plans[i] = {
            kind: "error",
            error: new FailedPreconditionError(`options.depends_on_batch_indexes[${missing}]: that entry was not added`, "PARENT_NOT_ADDED"),
          };
          parents.delete(i);
        }
      }
      const toInsert = plans.flatMap((p, i) => (p.kind === "insert" ? [insertRow(p.id, entries[i]!, parents.get(i))] : []));
      const inserted = await insertRows(client, toInsert);
      await deps.dependencies.insertEdges(
        client,
        [...parents.entries()].flatMap(([i, p]) => (plans[i]!.kind === "insert" ? p.edges : [])),
      );
      const existingIds = plans.flatMap((p) => (p.kind === "existing" ? [p.jobId] : []));
      const existing = new Map((await jobs.byIds(client, existingIds, [...registry.bossQueues])).map((r) => [r.id, r]));
      // A key whose job retention already deleted: the key starts over with a new job.
      const revived: JobInsertRow[] = [];
      for (const [i, p] of plans.entries()) {
        if (p.kind !== "existing" || existing.has(p.jobId)) continue;
        const { principal, job } = entries[i]!;
        const id = randomUUID();
        await keys.reassign(client, principal, { key: job.idempotencyKey!, requestHash: job.requestHash!, jobId: id });
        revived.push(insertRow(id, entries[i]!));
        plans[i] = { kind: "insert", id };
      }
      for (const [id, row] of await insertRows(client, revived)) inserted.set(id, row);

      const outcomes: EnqueueOutcome[] = plans.map((p) => {
        if (p.kind === "insert") return { ok: true, record: toRecord(inserted.get(p.id)!), deduplicated: false };
        if (p.kind === "existing") return { ok: true, record: toRecord(existing.get(p.jobId)!), deduplicated: true };
        if (p.kind === "error") return { ok: false, error: p.error };
        return { ok: false, error: new InternalError("unresolved follower") };
      });
      return outcomes.map((o, i) => {
        const p = plans[i]!;
        if (p.kind !== "follow") return o;
        const leader = outcomes[p.leader]!;
        return leader.ok ? { ok: true, record: leader.record, deduplicated: true } : leader;
      });
    });
  }

  return { add };
}

export type Enqueuer = ReturnType<typeof createEnqueuer>;
