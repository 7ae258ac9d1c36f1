/**
 * The catalog: queues and job types registered through the API, on top of the built-in ones.
 *
 * Every replica keeps the whole registry in memory and swaps in a new one whenever the catalog
 * changes: on the catalog's notification, and when the one-row version it checks every second moved
 * (a lost notification costs at most a second). A registered type's pg-boss queues (and their event
 * triggers) are created before its row is written, so a type every replica sees can always take jobs.
 * Payload schemas are compiled once per schema version.
 */
import type { PgBoss } from "pg-boss";
import { inTransaction, type Pool } from "../db/pool.js";
import { qualified } from "../db/sql.js";
import type { Logger } from "../logger.js";
import { AlreadyExistsError, FailedPreconditionError, type FieldViolation, NotFoundError, ValidationError } from "./errors.js";
import type { Listener } from "./listener.js";
import { compileSchema, schemaProblem } from "./payload-schema.js";
import type { CatalogQueries, CatalogQueueRow, CatalogTypeRow } from "./queries/catalog-queries.js";
import {
  createRegistry,
  type JobTypeDefinition,
  type JsonSchemaCheck,
  type LiveRegistry,
  type QueueDefinition,
  type QueuePolicy,
  type RegisteredJobType,
} from "./registry.js";
import { upsertTypeQueues } from "./store/boss.js";
import type { JobQueries } from "./store/job-queries.js";

/** How often a replica checks the catalog's version (a change reaches it within this). */
export const CATALOG_POLL_MS = 1000;

export const QUEUE_NAME = /^[a-z][a-z0-9_-]{0,62}$/;
export const JOB_TYPE_NAME = /^[a-z][a-z0-9_-]{0,62}:[a-z][a-z0-9_.-]{0,62}$/;
/** A principal's name in a `producers` or `workers` list. */
const PRINCIPAL_NAME = /^[A-Za-z0-9_.@-]{1,100}$/;
const MAX_PRINCIPALS = 100;
const MAX_DESCRIPTION = 1000;

/** The policy of a new queue, for every field its creator leaves unset. */
export const DEFAULT_POLICY: QueuePolicy = {
  retryLimit: 3,
  retryDelaySeconds: 10,
  retryBackoff: true,
  retryDelayMaxSeconds: 600,
  expireInSeconds: 15 * 60,
  priority: 0,
  deadLetterRetentionSeconds: 14 * 86_400,
  deleteAfterSeconds: 7 * 86_400,
  maxRetryLimit: 20,
  maxExpireInSeconds: 24 * 3600,
  concurrency: 10,
  keyConcurrency: 0,
};

/** The bounds of each policy field (inclusive). */
const POLICY_BOUNDS: Record<keyof QueuePolicy, [number, number] | "boolean"> = {
  retryLimit: [0, 20],
  retryDelaySeconds: [0, 86_400],
  retryBackoff: "boolean",
  retryDelayMaxSeconds: [1, 86_400],
  expireInSeconds: [1, 86_400],
  priority: [-100, 100],
  deadLetterRetentionSeconds: [3600, 365 * 86_400],
  deleteAfterSeconds: [60, 365 * 86_400],
  maxRetryLimit: [0, 20],
  maxExpireInSeconds: [1, 86_400],
  concurrency: [1, 1000],
  keyConcurrency: [0, 1000],
};

/** The policy's problems, as field violations under `prefix` (e.g. `queue.policy.`). */
export function policyViolations(p: QueuePolicy, prefix: string, field: (key: keyof QueuePolicy) => string): FieldViolation[] {
  const out: FieldViolation[] = [];
  for (const [key, bound] of Object.entries(POLICY_BOUNDS) as [keyof QueuePolicy, [number, number] | "boolean"][]) {
    if (bound === "boolean") continue;
    const v = p[key] as number;
    if (!Number.isFinite(v) || v < bound[0] || v > bound[1])
      out.push({ field: `${prefix}${field(key)}`, description: `must be from ${bound[0]} to ${bound[1]}`, reason: "OUT_OF_RANGE" });
  }
  if (p.retryLimit > p.maxRetryLimit)
    out.push({ field: `${prefix}${field("retryLimit")}`, description: "must not exceed max_retry_limit", reason: "OUT_OF_RANGE" });
  if (p.expireInSeconds > p.maxExpireInSeconds)
    out.push({ field: `${prefix}${field("expireInSeconds")}`, description: "must not exceed max_expire_in", reason: "OUT_OF_RANGE" });
  if (p.retryDelaySeconds > p.retryDelayMaxSeconds)
    out.push({ field: `${prefix}${field("retryDelaySeconds")}`, description: "must not exceed retry_delay_max", reason: "OUT_OF_RANGE" });
  return out;
}

/** A queue to create or change. */
export interface QueueInput {
  name: string;
  description: string;
  policy: QueuePolicy;
}

/** A job type to register or change. */
export interface JobTypeInput {
  name: string;
  queue: string;
  payloadSchema: Record<string, unknown> | undefined;
  producers: string[];
  workers: string[];
  description: string;
}

export interface CatalogDeps {
  pool: Pool;
  boss: PgBoss;
  schema: string;
  queries: CatalogQueries;
  jobs: JobQueries;
  registry: LiveRegistry;
  builtIn: { queues: readonly QueueDefinition[]; types: readonly JobTypeDefinition<any>[] };
  listener: Listener;
  logger: Logger;
}

/** The catalog of one replica: its registry kept current, and the changes the API makes. */
export async function startCatalog(deps: CatalogDeps) {
  const { pool, queries, registry, logger } = deps;
  const checks = new Map<string, { version: number; check: JsonSchemaCheck }>();
  const changeListeners = new Set<() => void>();
  let version = "";
  let refreshing: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  const queueOf = (r: CatalogQueueRow): QueueDefinition => ({
    name: r.name,
    description: r.description,
    policy: { ...DEFAULT_POLICY, ...r.policy },
    builtIn: false,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  });

  const typeOf = (r: CatalogTypeRow): JobTypeDefinition | undefined => {
    let compiled = checks.get(r.name);
    if (!compiled || compiled.version !== r.version) {
      try {
        compiled = { version: r.version, check: compileSchema(r.payload_schema) };
        checks.set(r.name, compiled);
      } catch (err) {
        logger.error({ type: r.name, err: (err as Error).message }, "a registered job type's schema does not compile; the type is left out");
        return undefined;
      }
    }
    return {
      type: r.name,
      queue: r.queue,
      payload: compiled.check,
      builtIn: false,
      producers: r.producers,
      workers: r.workers,
      description: r.description,
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    };
  };

  async function load(): Promise<void> {
    const current = await queries.version(pool);
    if (current === version) return;
    const loaded = await queries.load(pool);
    const queues = [...deps.builtIn.queues, ...loaded.queues.map(queueOf)];
    const known = new Set(queues.map((q) => q.name));
    const types = [
      ...deps.builtIn.types,
      ...loaded.types.flatMap((r) => {
        if (!known.has(r.queue)) {
          logger.warn({ type: r.name, queue: r.queue }, "a registered job type names an unknown queue; the type is left out");
          return [];
        }
        const t = typeOf(r);
        return t ? [t] : [];
      }),
    ];
    for (const name of checks.keys()) if (!loaded.types.some((t) => t.name === name)) checks.delete(name);
    registry.replace(createRegistry(queues, types));
    version = loaded.version;
    for (const l of changeListeners) l();
  }

  /** Loads the catalog if it changed; concurrent calls share a load, and one asked for meanwhile runs after it. */
  function refresh(): Promise<void> {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      try {
        do {
          again = false;
          await load();
        } while (again);
      } finally {
        refreshing = undefined;
      }
    })();
    return refreshing;
  }

  const refreshQuietly = () => {
    if (!stopped) refresh().catch((err: Error) => logger.warn({ err: err.message }, "catalog refresh failed; retrying"));
  };

  await refresh();
  // Registered types' pg-boss queues exist since registration; a restored or upgraded pg-boss schema
  // may lack them, so every start makes sure (and the event triggers with them).
  for (const t of registry.types) if (!t.builtIn) await upsertTypeQueues(deps.boss, t);
  await ensureTriggers();
  const offCatalog = deps.listener.onCatalog(refreshQuietly);
  const offResync = deps.listener.onResync(refreshQuietly);
  const poll = setInterval(refreshQuietly, CATALOG_POLL_MS);
  poll.unref();

  async function ensureTriggers(): Promise<void> {
    await pool.query(`SELECT ${qualified(deps.schema, "ensure_event_triggers")}()`);
  }

  function typeViolations(t: JobTypeInput, prefix: string, creating: boolean): FieldViolation[] {
    const out: FieldViolation[] = [];
    if (creating) {
      if (!JOB_TYPE_NAME.test(t.name))
        out.push({ field: `${prefix}name`, description: `must match ${JOB_TYPE_NAME.source} (e.g. invoice:render)`, reason: "INVALID_FORMAT" });
      if (!t.queue) out.push({ field: `${prefix}queue`, description: "is required", reason: "REQUIRED" });
    }
    if (t.payloadSchema === undefined) out.push({ field: `${prefix}payload_schema`, description: "is required (a JSON Schema object)", reason: "REQUIRED" });
    else {
      const problem = schemaProblem(t.payloadSchema);
      if (problem) out.push({ field: `${prefix}payload_schema`, description: problem, reason: "INVALID_SCHEMA" });
    }
    for (const [list, names] of [
      ["producers", t.producers],
      ["workers", t.workers],
    ] as const) {
      if (names.length > MAX_PRINCIPALS)
        out.push({ field: `${prefix}${list}`, description: `must name at most ${MAX_PRINCIPALS} principals`, reason: "TOO_BIG" });
      names.forEach((n, i) => {
        if (!(list === "producers" && n === "*") && !PRINCIPAL_NAME.test(n))
          out.push({
            field: `${prefix}${list}[${i}]`,
            description: `must be a principal name (${PRINCIPAL_NAME.source})${list === "producers" ? " or *" : ""}`,
            reason: "INVALID_FORMAT",
          });
      });
    }
    if (t.description.length > MAX_DESCRIPTION)
      out.push({ field: `${prefix}description`, description: `must be at most ${MAX_DESCRIPTION} characters`, reason: "TOO_BIG" });
    return out;
  }

  /** A queue's current definition, from the database (another replica may have just created it). */
  async function queueNamed(name: string): Promise<QueueDefinition | undefined> {
    const builtIn = deps.builtIn.queues.find((q) => q.name === name);
    if (builtIn) return builtIn;
    const row = await queries.queue(pool, name);
    return row ? queueOf(row) : undefined;
  }

  return {
    /** Calls `listener` after every change of the registry. */
    onChange(listener: () => void): () => void {
      changeListeners.add(listener);
      return () => changeListeners.delete(listener);
    },
    refresh,

    async createQueue(q: QueueInput): Promise<QueueDefinition> {
      const violations: FieldViolation[] = [];
      if (!QUEUE_NAME.test(q.name)) violations.push({ field: "queue.name", description: `must match ${QUEUE_NAME.source}`, reason: "INVALID_FORMAT" });
      if (q.description.length > MAX_DESCRIPTION)
        violations.push({ field: "queue.description", description: `must be at most ${MAX_DESCRIPTION} characters`, reason: "TOO_BIG" });
      violations.push(...policyViolations(q.policy, "queue.policy.", snake));
      if (violations.length > 0) throw new ValidationError(violations);
      if (deps.builtIn.queues.some((b) => b.name === q.name)) throw new AlreadyExistsError(`queue ${q.name} already exists`, "QUEUE_EXISTS");
      const row = await queries.insertQueue(pool, q);
      if (!row) throw new AlreadyExistsError(`queue ${q.name} already exists`, "QUEUE_EXISTS");
      await refresh();
      return queueOf(row);
    },

    async updateQueue(q: QueueInput): Promise<QueueDefinition> {
      if (deps.builtIn.queues.some((b) => b.name === q.name))
        throw new FailedPreconditionError(`queue ${q.name} is built in: its policy comes from the service's settings (README, Configuration)`);
      const violations = policyViolations(q.policy, "queue.policy.", snake);
      if (q.description.length > MAX_DESCRIPTION)
        violations.push({ field: "queue.description", description: `must be at most ${MAX_DESCRIPTION} characters`, reason: "TOO_BIG" });
      if (violations.length > 0) throw new ValidationError(violations);
      const row = await queries.updateQueue(pool, q);
      if (!row) throw new NotFoundError(`queue ${q.name} not found`);
      const updated = queueOf(row);
      // The queue's types' pg-boss queues take the new policy (retries, expiry, retention).
      for (const t of registry.typesOf(q.name)) await upsertTypeQueues(deps.boss, { ...t, queueDefinition: updated });
      await refresh();
      return updated;
    },

    async deleteQueue(name: string): Promise<void> {
      if (deps.builtIn.queues.some((b) => b.name === name)) throw new FailedPreconditionError(`queue ${name} is built in and cannot be deleted`);
      const outcome = await queries.deleteQueue(pool, name);
      if (outcome === "missing") throw new NotFoundError(`queue ${name} not found`);
      if (outcome === "in-use") throw new FailedPreconditionError(`queue ${name} still has job types: delete them first`);
      await refresh();
    },

    async registerType(t: JobTypeInput): Promise<RegisteredJobType> {
      const violations = typeViolations(t, "job_type.", true);
      const queue = t.queue && violations.length === 0 ? await queueNamed(t.queue) : undefined;
      if (t.queue && violations.length === 0 && !queue)
        violations.push({ field: "job_type.queue", description: `is not a queue (create it first with CreateQueue)`, reason: "UNKNOWN_QUEUE" });
      if (violations.length > 0) throw new ValidationError(violations);
      if (deps.builtIn.types.some((b) => b.type === t.name)) throw new AlreadyExistsError(`job type ${t.name} already exists`, "JOB_TYPE_EXISTS");
      const draft = createRegistry([queue!], [{ type: t.name, queue: queue!.name, payload: compileSchema(t.payloadSchema!) }]).type(t.name)!;
      // The pg-boss queues (and their partitions' triggers) first: once the row is visible, jobs can come.
      await upsertTypeQueues(deps.boss, draft);
      await ensureTriggers();
      const row = await queries.insertType(pool, {
        name: t.name,
        queue: queue!.name,
        payload_schema: t.payloadSchema!,
        producers: t.producers,
        workers: t.workers,
        description: t.description,
      });
      if (!row) throw new AlreadyExistsError(`job type ${t.name} already exists`, "JOB_TYPE_EXISTS");
      await refresh();
      return registry.type(t.name) ?? draft;
    },

    async updateType(t: Omit<JobTypeInput, "queue">): Promise<RegisteredJobType> {
      if (deps.builtIn.types.some((b) => b.type === t.name)) throw new FailedPreconditionError(`job type ${t.name} is built in and cannot be changed`);
      const violations = typeViolations({ ...t, queue: "" }, "job_type.", false);
      if (violations.length > 0) throw new ValidationError(violations);
      const row = await queries.updateType(pool, {
        name: t.name,
        payload_schema: t.payloadSchema!,
        producers: t.producers,
        workers: t.workers,
        description: t.description,
      });
      if (!row) throw new NotFoundError(`job type ${t.name} not found`);
      await refresh();
      const updated = registry.type(t.name);
      if (!updated) throw new NotFoundError(`job type ${t.name} not found`);
      return updated;
    },

    /**
     * Deletes a registered type that has no live job (waiting, running, or a dead letter). Its
     * pg-boss queues stay (with its finished jobs, until their retention): registering the name
     * again picks them up.
     */
    async deleteType(name: string): Promise<void> {
      if (deps.builtIn.types.some((b) => b.type === name)) throw new FailedPreconditionError(`job type ${name} is built in and cannot be deleted`);
      await inTransaction(pool, async (client) => {
        const row = await queries.type(client, name, true);
        if (!row) throw new NotFoundError(`job type ${name} not found`);
        const type = registry.type(name);
        const bossQueues = type ? [type.bossQueue, type.deadLetterBossQueue] : [];
        if (bossQueues.length > 0 && (await deps.jobs.anyLive(client, bossQueues)))
          throw new FailedPreconditionError(`job type ${name} still has live jobs (waiting, running or dead letters): cancel or purge them first`);
        await queries.deleteType(client, name);
      });
      await refresh();
    },

    /** Every job type, built-in and registered, by name. */
    types(): RegisteredJobType[] {
      return [...registry.types].sort((a, b) => a.type.localeCompare(b.type));
    },

    stop(): void {
      stopped = true;
      clearInterval(poll);
      offCatalog();
      offResync();
    },
  };
}

/** `retryLimit` -> `retry_limit` (the API's field names). */
export function snake(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`).replace(/_seconds$/, "");
}

export type Catalog = Awaited<ReturnType<typeof startCatalog>>;
