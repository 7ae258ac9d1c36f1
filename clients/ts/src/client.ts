/**
 * The queue client: the three generated service clients behind one transport, plus the helpers an
 * integrating service needs (typed adds, waiting for a job, a resumable change feed). Platform
 * neutral: `index.ts` (Node) and `web.ts` (browsers) give it a transport.
 */
import { create, type JsonObject } from "@bufbuild/protobuf";
import { durationFromMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { type Job, type JobEvent, type JobOptions, JobOptionsSchema, ParentFailurePolicy } from "./gen/jobs/v1/job_pb.js";
import { JobService, type WatchJobsRequest } from "./gen/jobs/v1/job_service_pb.js";
import { type MetricsSnapshot, MonitoringService } from "./gen/jobs/v1/monitoring_service_pb.js";
import { type JobType as JobTypeMessage, QueueService } from "./gen/jobs/v1/queue_service_pb.js";
import { WorkerService } from "./gen/jobs/v1/worker_service_pb.js";
import { backoffOf, bearer, idempotencyKeys, type RetryOptions, retryUnavailable } from "./interceptors.js";
import type { AnalyticsAggregatePayload, EmailPayload, JobPayloads, JobType, NftMintPayload, PaymentPayload, RefundPayload } from "./payloads.js";
import { type WaitOptions, type WatchOptions, waitForJob, watchJobs, watchMetrics } from "./watch.js";

/** Options of every client. */
export interface ClientOptions {
  /** The service's address, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** A bearer token (or a function returning the current one, for rotation). */
  token?: string | (() => string);
  /** UNAVAILABLE retries (other errors are never retried). */
  retry?: RetryOptions;
  /** More interceptors, run after the client's own (auth, idempotency keys, retries). */
  interceptors?: Interceptor[];
}

/** Per-job options of AddJob, in plain units. */
export interface AddOptions {
  /** Repeating a key (within the retention window) returns the first job instead of adding another.
   *  Default: a random key per call, so that the client's own retries never add a job twice. */
  idempotencyKey?: string;
  /** Higher runs first; default 0. */
  priority?: number;
  /** Do not start before this time. */
  startAfter?: Date;
  /** Do not start before this many milliseconds from now. */
  delayMs?: number;
  /** Overrides of the queue's retry policy. */
  retryLimit?: number;
  retryDelayMs?: number;
  retryBackoff?: boolean;
  /** How long one attempt may run. */
  expireInMs?: number;
  /** Jobs that must complete first (ids, at most 100): the job waits in JOB_STATE_WAITING until then. */
  dependsOn?: string[];
  /** What a parent's failure does: "cancel" (the default) or "run". Only with `dependsOn`. */
  onParentFailure?: "cancel" | "run";
  /** At most the queue's `keyConcurrency` jobs with this key run at once (e.g. a customer id). */
  concurrencyKey?: string;
}

/** What AddJob returns. */
export interface AddedJob {
  job: Job;
  /** True when the idempotency key matched an earlier job: nothing new was added. */
  deduplicated: boolean;
}

/** The JobOptions message of {@link AddOptions}. */
export function jobOptions(o: AddOptions = {}): JobOptions {
  return create(JobOptionsSchema, {
    priority: o.priority,
    retryLimit: o.retryLimit,
    retryBackoff: o.retryBackoff,
    idempotencyKey: o.idempotencyKey,
    retryDelay: o.retryDelayMs === undefined ? undefined : durationFromMs(o.retryDelayMs),
    expireIn: o.expireInMs === undefined ? undefined : durationFromMs(o.expireInMs),
    dependsOn: o.dependsOn ?? [],
    onParentFailure:
      o.onParentFailure === "run" ? ParentFailurePolicy.RUN : o.onParentFailure === "cancel" ? ParentFailurePolicy.CANCEL : ParentFailurePolicy.UNSPECIFIED,
    concurrencyKey: o.concurrencyKey,
    schedule:
      o.startAfter !== undefined
        ? { case: "startAfter", value: timestampFromDate(o.startAfter) }
        : o.delayMs !== undefined
          ? { case: "delay", value: durationFromMs(o.delayMs) }
          : { case: undefined },
  });
}

/** A payload as a protobuf Struct: keys whose value is `undefined` are left out. */
function struct(payload: object): JsonObject {
  return Object.fromEntries(Object.entries(payload).filter(([, v]) => v !== undefined)) as JsonObject;
}

/** A client of queue-service. */
export class QueueClient {
  /** The generated JobService client (every RPC, with the client's auth and retries). */
  readonly jobs: Client<typeof JobService>;
  /** The generated QueueService client. */
  readonly queues: Client<typeof QueueService>;
  /** The generated MonitoringService client. */
  readonly monitoring: Client<typeof MonitoringService>;
  /** The generated WorkerService client (for workers of your own; `createWorker` runs the loop for you). */
  readonly workers: Client<typeof WorkerService>;
  readonly #backoff;

  constructor(transport: Transport, retry?: RetryOptions) {
    this.jobs = createClient(JobService, transport);
    this.queues = createClient(QueueService, transport);
    this.monitoring = createClient(MonitoringService, transport);
    this.workers = createClient(WorkerService, transport);
    this.#backoff = backoffOf(retry);
  }

  /** Adds a job of any registered type. */
  async addJob<T extends JobType>(type: T, payload: JobPayloads[T], options?: AddOptions): Promise<AddedJob> {
    const res = await this.jobs.addJob({ type, payload: struct(payload), options: jobOptions(options) });
    return { job: res.job!, deduplicated: res.deduplicated };
  }

  /** Charges a payment (`payment:process`, money queue: effectively once). */
  addPayment(payload: PaymentPayload, options?: AddOptions): Promise<AddedJob> {
    return this.addJob("payment:process", payload, options);
  }

  /**
   * Refunds (part of) a payment this principal charged (`refund:process`). Without a `refundId`, a
   * random one is set, so that however this call is retried, the payment is refunded once; pass your
   * own (an order's return id, say) to make repeated calls refund once too.
   */
  addRefund(payload: RefundPayload, options?: AddOptions): Promise<AddedJob> {
    return this.addJob("refund:process", { ...payload, refundId: payload.refundId ?? crypto.randomUUID() }, options);
  }

  /** Mints a ticket's NFT (`nft:mint`). */
  addNftMint(payload: NftMintPayload, options?: AddOptions): Promise<AddedJob> {
    return this.addJob("nft:mint", payload, options);
  }

  /** Sends an email (`email:send`, at least once). */
  addEmail(payload: EmailPayload, options?: AddOptions): Promise<AddedJob> {
    return this.addJob("email:send", payload, options);
  }

  /** Rolls analytics up now (`analytics:aggregate`). */
  addAnalyticsAggregate(payload: AnalyticsAggregatePayload = {}, options?: AddOptions): Promise<AddedJob> {
    return this.addJob("analytics:aggregate", payload, options);
  }

  /**
   * Registers a job type of your own (admin): its queue, its payload's JSON Schema (draft 2020-12),
   * the service principals that may add it (`["*"]`: all) and the worker principals that may run it.
   */
  async registerJobType(type: {
    name: string;
    queue: string;
    payloadSchema: Record<string, unknown>;
    producers?: string[];
    workers?: string[];
    description?: string;
  }): Promise<JobTypeMessage> {
    const res = await this.queues.registerJobType({
      jobType: {
        name: type.name,
        queue: type.queue,
        payloadSchema: type.payloadSchema as JsonObject,
        producers: type.producers ?? ["*"],
        workers: type.workers ?? [],
        description: type.description ?? "",
      },
    });
    return res.jobType!;
  }

  /**
   * A typed handle on a job type of your own: `client.jobType<Invoice>("invoice:render").add({...})`.
   * The payload type is yours to declare (the service checks it against the registered schema).
   */
  jobType<P extends object>(name: string): { add(payload: P, options?: AddOptions): Promise<AddedJob> } {
    return {
      add: async (payload, options) => {
        const res = await this.jobs.addJob({ type: name, payload: struct(payload), options: jobOptions(options) });
        return { job: res.job!, deduplicated: res.deduplicated };
      },
    };
  }

  /** A job by id (NOT_FOUND if there is none, or if it is another principal's). */
  async getJob(id: string): Promise<Job> {
    return (await this.jobs.getJob({ id })).job!;
  }

  /**
   * Resolves with the job once it is final (COMPLETED, CANCELLED or FAILED), following WatchJob and
   * reconnecting after UNAVAILABLE. Rejects with DEADLINE_EXCEEDED after `timeoutMs`, and with the
   * signal's reason when `signal` aborts.
   */
  waitForJob(id: string, options?: WaitOptions): Promise<Job> {
    return waitForJob(this.jobs, this.#backoff, id, options);
  }

  /**
   * Every matching change, as an async iterator, for as long as the caller iterates: after a
   * disconnect it reconnects with the cursor of the last event it yielded, so nothing is missed or
   * repeated (within the service's event retention). Ends quietly when `signal` aborts.
   */
  watchJobs(
    filter: Partial<Pick<WatchJobsRequest, "queue" | "types" | "states" | "cursor">> = {},
    options?: WatchOptions,
  ): AsyncGenerator<JobEvent, void, undefined> {
    return watchJobs(this.jobs, this.#backoff, filter, options);
  }

  /** A metrics snapshot of the last minute every `intervalMs` (default 1 s, at least 250 ms), through
   *  reconnects. Ends quietly when `signal` aborts. */
  watchMetrics(request: { queue?: string; intervalMs?: number } = {}, options?: WatchOptions): AsyncGenerator<MetricsSnapshot, void, undefined> {
    return watchMetrics(this.monitoring, this.#backoff, request, options);
  }
}

/** The client's own interceptors, in order. */
export function clientInterceptors(options: ClientOptions): Interceptor[] {
  return [
    ...(options.token === undefined ? [] : [bearer(options.token)]),
    idempotencyKeys(),
    retryUnavailable(backoffOf(options.retry)),
    ...(options.interceptors ?? []),
  ];
}
