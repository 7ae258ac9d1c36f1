/**
 * The registry of queues and job types: which job type belongs to which queue, under which policy,
 * with which payload schema, and the pg-boss queue names they map to.
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
}

/** A queue: a named group of job types sharing a policy. */
export interface QueueDefinition {
  readonly name: string;
  readonly description: string;
  readonly policy: QueuePolicy;
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

/** A job type: its name, queue and payload schema. Processors (workers/) add `process`. */
export interface JobTypeDefinition<P = unknown> {
  /** The public name, e.g. `payment:process`. */
  readonly type: string;
  /** The queue's name. */
  readonly queue: string;
  /** Validates a payload; unknown keys are rejected. */
  readonly payload: z.ZodType<P>;
  /** Rules that depend on who adds the job, checked after the schema (nothing to say: an empty list). */
  readonly admit?: (payload: P, caller: Caller) => AdmissionProblem[];
}

/** A resolved job type, with its pg-boss queue names. */
export interface RegisteredJobType<P = unknown> extends JobTypeDefinition<P> {
  readonly bossQueue: string;
  readonly deadLetterBossQueue: string;
  readonly queueDefinition: QueueDefinition;
}

/** The lookups the engine, the RPC layer and the workers share. */
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
