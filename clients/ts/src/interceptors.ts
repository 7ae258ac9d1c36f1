/**
 * What every call of a queue client goes through: the bearer token, an idempotency key on each job
 * added without one, and retries with backoff when the service is UNAVAILABLE (a replica restarting,
 * the database failing over, a connection refused). Nothing else is retried.
 *
 * Retrying is safe because the key is set before the first attempt: an AddJob whose response was
 * lost is answered by the second attempt with the same job (`deduplicated: true`), not a second one.
 * The other writes are idempotent (pause, resume, cancel, limits, acknowledge) or refuse a repeat
 * with a clear error (CreateAlertRule: ALREADY_EXISTS; RetryJob: FAILED_PRECONDITION).
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { JobOptionsSchema } from "./gen/jobs/v1/job_pb.js";
import type { AddJobRequest, AddJobsRequest } from "./gen/jobs/v1/job_service_pb.js";

/** How UNAVAILABLE is retried. */
export interface RetryOptions {
  /** Attempts of a unary call in all (1: no retry). Default 5. Streams reconnect until stopped. */
  maxAttempts?: number;
  /** The first pause. Default 100 ms; doubled each time, each pause a random 50-100 % of that. */
  initialDelayMs?: number;
  /** The longest pause. Default 5,000 ms. */
  maxDelayMs?: number;
}

/** Retry options with the defaults filled in. */
export type Backoff = Required<RetryOptions>;

export function backoffOf(options: RetryOptions = {}): Backoff {
  return { maxAttempts: options.maxAttempts ?? 5, initialDelayMs: options.initialDelayMs ?? 100, maxDelayMs: options.maxDelayMs ?? 5000 };
}

/** Waits before retry number `attempt` (0-based): 50-100 % of the capped exponential delay. */
export function pause(backoff: Backoff, attempt: number, signal?: AbortSignal): Promise<void> {
  const ceiling = Math.min(backoff.maxDelayMs, backoff.initialDelayMs * 2 ** attempt);
  const ms = ceiling / 2 + (Math.random() * ceiling) / 2;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Node errors of a connection that dropped or refused a call, as gRPC's UNAVAILABLE means it. */
const droppedConnection = new Set(["ECONNRESET", "ECONNREFUSED", "EPIPE", "ERR_HTTP2_GOAWAY_SESSION", "ERR_HTTP2_SESSION_ERROR"]);

/**
 * The error as the caller should see it: a call whose connection dropped, or whose stream the peer
 * refused, is UNAVAILABLE (as gRPC defines it: transient, and it may or may not have taken effect),
 * whatever the transport called it (connect-node says ABORTED or INTERNAL, fetch a TypeError).
 */
export function normalized(err: unknown): unknown {
  if (!(err instanceof ConnectError) || err.code === Code.Unavailable || err.code === Code.Canceled || err.code === Code.DeadlineExceeded) return err;
  for (let cause: unknown = err.cause; cause instanceof Error; cause = cause.cause) {
    const code = (cause as { code?: unknown }).code;
    const dropped =
      (typeof code === "string" && droppedConnection.has(code)) ||
      (code === "ERR_HTTP2_STREAM_ERROR" && cause.message.includes("REFUSED_STREAM")) ||
      (cause instanceof TypeError && err.code === Code.Unknown); // fetch: a network error
    if (dropped) return new ConnectError(`${err.rawMessage} (connection lost)`, Code.Unavailable, err.metadata, undefined, err.cause);
  }
  return err;
}

/** Whether an error is worth another attempt: UNAVAILABLE, and nothing else. */
export const retryable = (err: unknown): boolean => {
  const e = normalized(err);
  return e instanceof ConnectError && e.code === Code.Unavailable;
};

/** Sends `Authorization: Bearer <token>` on every call. */
export function bearer(token: string | (() => string)): Interceptor {
  return (next) => (req) => {
    req.header.set("authorization", `Bearer ${typeof token === "function" ? token() : token}`);
    return next(req);
  };
}

/** Gives every job added without an idempotency key a random one (before any retry). */
export function idempotencyKeys(): Interceptor {
  const ensure = (r: AddJobRequest) => {
    r.options ??= create(JobOptionsSchema);
    r.options.idempotencyKey ||= crypto.randomUUID();
  };
  return (next) => (req) => {
    if (!req.stream && req.service.typeName === "jobs.v1.JobService") {
      if (req.method.name === "AddJob") ensure(req.message as AddJobRequest);
      else if (req.method.name === "AddJobs") for (const job of (req.message as AddJobsRequest).jobs) ensure(job);
    }
    return next(req);
  };
}

/** Retries unary calls that failed with UNAVAILABLE. */
export function retryUnavailable(backoff: Backoff): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    for (let attempt = 0; ; attempt++) {
      try {
        return await next(req);
      } catch (caught) {
        const err = normalized(caught);
        if (!retryable(err) || attempt + 1 >= backoff.maxAttempts || req.signal.aborted) throw err;
        await pause(backoff, attempt, req.signal);
      }
    }
  };
}
