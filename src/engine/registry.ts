/**
 * The registry of queues and job types: which job type belongs to which queue, under which policy,
 * with which payload schema, who may add and fetch it, and the pg-boss queue names they map to. The
 * seed's queues and types are compiled in (`builtIn`); the catalog (catalog.ts) adds those registered
 * through the API, and swaps in a new registry on every change (`liveRegistry`), so readers always
 * ask the registry rather than keep its lists.
 *
 * pg-boss queue names allow only `[A-Za-z0-9_.\-/]` and are interpolated into its SQL, so a job type
 * such as `payment:process` is never passed to pg-boss as given: each job type has its own pg-boss
 * queue `<queue>/<type with ':' as '.'>` (e.g. `money/payment.process`) and its own dead letter queue
 * (`money/payment.process/dead-letter`). Every name reaching pg-boss comes from this registry.
 */
import type { z } from "zod";

/** A queue's policy: the defaults of its jobs and the bounds a job's options must stay within. */
export interface QueuePolicy {
  /** Retries after the first attempt. */
  retryLimit: number;
  retryDelaySeconds: number;
  retryBackoff: boolean;
  /** Cap of a backoff delay. */
  retryDelayMaxSeconds: number;
  /** How long one attempt may run. */
  expireInSeconds: number;
  priority: number;
  /** How long a dead letter is kept. */
  deadLetterRetentionSeconds: number;
  /** How long a completed, failed or cancelled job is kept. */
  deleteAfterSeconds: number;
  maxRetryLimit: number;
  maxExpireInSeconds: number;
  /** Jobs of the queue one replica runs at once. */
  concurrency: number;
  /** Jobs of one concurrency key that run at once across the cluster (0: unlimited). */
  keyConcurrency: number;
}

/** A queue: a named group of job types sharing a policy. */
export interface QueueDefinition {
  readonly name: string;
  readonly description: string;
  readonly policy: QueuePolicy;
  /** One of the seed's queues (configured by settings; never deleted). */
  readonly builtIn?: boolean;
  readonly createdAt?: Date;
  readonly updatedAt?: Date;
}

/** Who adds a job, as a job type's admission rule sees it. */
export interface Caller {
  readonly admin: boolean;
  readonly now: Date;
  /** How long job events are kept (EVENT_RETENTION_SECONDS). */
  readonly eventRetentionSeconds: number;
}

/** A payload refused for who adds it: the field (path under the payload), what is wrong and the rule. */
export interface AdmissionProblem {
  readonly path: readonly (string | number)[];
  readonly description: string;
  readonly reason: string;
}

/** What a JSON Schema check says of a payload: valid, or the problems (paths under the payload). */
export type PayloadVerdict = { ok: true } | { ok: false; problems: AdmissionProblem[] };

/** A registered type's payload schema (JSON Schema draft 2020-12), compiled once per version. */
export interface JsonSchemaCheck {
  readonly kind: "json-schema";
  readonly schema: Record<string, unknown>;
  check(payload: unknown): PayloadVerdict;
}

/** A job type: its name, queue and payload schema. Processors (workers/) add `process`. */
export interface JobTypeDefinition<P = unknown> {
  /** The public name, e.g. `payment:process`. */
  readonly type: string;
  /** The queue's name. */
  readonly queue: string;
  /** Validates a payload; unknown keys are rejected (built-in: zod; registered: its JSON Schema). */
  readonly payload: z.ZodType<P> | JsonSchemaCheck;
  /** Rules that depend on who adds the job, checked after the schema (nothing to say: an empty list). */
  readonly admit?: (payload: P, caller: Caller) => AdmissionProblem[];
  /** One of the seed's types, run by an in-process processor. */
  readonly builtIn?: boolean;
  /** Service principals that may add it (`*`: all); unset: every service principal. Admins always may. */
  readonly producers?: readonly string[];
  /** Worker principals that may fetch it through WorkerService; unset: none (admins only). */
  readonly workers?: readonly string[];
  readonly description?: string;
  readonly createdAt?: Date;
  readonly updatedAt?: Date;
}

/** Whether `principal` (not an admin) may add jobs of `type`. */
export function mayProduce(type: JobTypeDefinition, principal: string): boolean {
  return !type.producers || type.producers.includes("*") || type.producers.includes(principal);
}

/** Whether `principal` (not an admin) may fetch jobs of `type`. */
export function mayWork(type: JobTypeDefinition, principal: string): boolean {
  return type.workers?.includes(principal) ?? false;
}

/** A resolved job type, with its pg-boss queue names. */
export interface RegisteredJobType<P = unknown> extends JobTypeDefinition<P> {
  readonly bossQueue: string;
  readonly deadLetterBossQueue: string;
  readonly queueDefinition: QueueDefinition;
}

/** The lookups the engine, the RPC layer and the workers share (ask each time: it changes). */
export interface JobRegistry {
  readonly queues: readonly QueueDefinition[];
  readonly types: readonly RegisteredJobType[];
  /** The job type named `type`, or undefined. */
  type(type: string): RegisteredJobType | undefined;
  /** The queue named `name`, or undefined. */
  queue(name: string): QueueDefinition | undefined;
  /** The job types of a queue. */
  typesOf(queue: string): RegisteredJobType[];
  /** Every pg-boss queue: each job type's, and its dead letter queue. */
  readonly bossQueues: readonly string[];
  /** The job type whose pg-boss queue (or dead letter queue) is `bossQueue`. */
  byBossQueue(bossQueue: string): { type: RegisteredJobType; deadLetter: boolean } | undefined;
}

/** The pg-boss queue name of a job type. */
export function bossQueueName(queue: string, type: string): string {
  const name = `${queue}/${type.replaceAll(":", ".")}`;
  if (!/^[A-Za-z0-9_.\-/]+$/.test(name)) throw new Error(`job type ${type} of queue ${queue} does not map to a valid pg-boss queue name`);
  return name;
}

/** Builds the registry, checking that every job type names a known queue and is unique. */
export function createRegistry(queues: readonly QueueDefinition[], definitions: readonly JobTypeDefinition<any>[]): JobRegistry {
  const queueByName = new Map(queues.map((q) => [q.name, q]));
  const byType = new Map<string, RegisteredJobType>();
  const byBoss = new Map<string, { type: RegisteredJobType; deadLetter: boolean }>();
  for (const d of definitions) {
    const queueDefinition = queueByName.get(d.queue);
    if (!queueDefinition) throw new Error(`job type ${d.type} names unknown queue ${d.queue}`);
    if (byType.has(d.type)) throw new Error(`job type ${d.type} is registered twice`);
    const bossQueue = bossQueueName(d.queue, d.type);
    const registered: RegisteredJobType = { ...d, bossQueue, deadLetterBossQueue: `${bossQueue}/dead-letter`, queueDefinition };
    byType.set(d.type, registered);
    byBoss.set(registered.bossQueue, { type: registered, deadLetter: false });
    byBoss.set(registered.deadLetterBossQueue, { type: registered, deadLetter: true });
  }
  const types = [...byType.values()];
  return {
    queues,
    types,
    bossQueues: types.flatMap((t) => [t.bossQueue, t.deadLetterBossQueue]),
    type: (type) => byType.get(type),
    queue: (name) => queueByName.get(name),
    typesOf: (queue) => types.filter((t) => t.queue === queue),
    byBossQueue: (name) => byBoss.get(name),
  };
}

/** A registry whose contents the catalog replaces on every change; every lookup reads the current one. */
export interface LiveRegistry extends JobRegistry {
  replace(next: JobRegistry): void;
}

export function isLive(registry: JobRegistry): registry is LiveRegistry {
  return typeof (registry as Partial<LiveRegistry>).replace === "function";
}

/** Wraps `initial` so that it can be replaced in place. */
export function liveRegistry(initial: JobRegistry): LiveRegistry {
  let current = initial;
  return {
    get queues() {
      return current.queues;
    },
    get types() {
      return current.types;
    },
    get bossQueues() {
      return current.bossQueues;
    },
    type: (type) => current.type(type),
    queue: (name) => current.queue(name),
    typesOf: (queue) => current.typesOf(queue),
    byBossQueue: (name) => current.byBossQueue(name),
    replace(next) {
      current = next;
    },
  };
}
