/**
 * queue-service client for Node.js: Connect, gRPC or gRPC-Web over HTTP/2 (or HTTP/1.1).
 *
 *   const client = createQueueClient({ baseUrl: "http://127.0.0.1:8080", token });
 *   const { job } = await client.addPayment({ paymentId, orderId, customerId, amount: 1299, currency: "USD", paymentMethod });
 *   const done = await client.waitForJob(job.id, { timeoutMs: 30_000 });
 *
 * and workers for job types of your own: `createWorker({ baseUrl, token, types, handler })` (worker.ts).
 */
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { type ClientOptions, clientInterceptors, QueueClient } from "./client.js";

export interface NodeClientOptions extends ClientOptions {
  /** Default `grpc`. */
  protocol?: "grpc" | "connect" | "grpc-web";
  /** Default `2` (HTTP/2, cleartext with prior knowledge for `http://`); `1.1` for Connect or gRPC-Web through HTTP/1 proxies. */
  httpVersion?: "2" | "1.1";
}

/** A client whose HTTP/2 connection {@link NodeQueueClient.close} closes. */
export class NodeQueueClient extends QueueClient {
  readonly #sessions: Http2SessionManager | undefined;

  constructor(options: NodeClientOptions) {
    const protocol = options.protocol ?? "grpc";
    const httpVersion = protocol === "grpc" ? "2" : (options.httpVersion ?? "2");
    const sessions = httpVersion === "2" ? new Http2SessionManager(options.baseUrl) : undefined;
    const common = { baseUrl: options.baseUrl, interceptors: clientInterceptors(options) };
    const transport =
      protocol === "grpc"
        ? createGrpcTransport({ ...common, sessionManager: sessions })
        : protocol === "grpc-web"
          ? httpVersion === "2"
            ? createGrpcWebTransport({ ...common, httpVersion, sessionManager: sessions })
            : createGrpcWebTransport({ ...common, httpVersion })
          : httpVersion === "2"
            ? createConnectTransport({ ...common, httpVersion, sessionManager: sessions })
            : createConnectTransport({ ...common, httpVersion });
    super(transport, options.retry);
    this.#sessions = sessions;
  }

  /** Closes the HTTP/2 connection (open streams end with CANCELED). Idle connections do not keep
   *  the process alive, so this is only needed to stop streams or free the socket early. */
  close(): void {
    this.#sessions?.abort();
  }
}

/** A client of queue-service for Node.js. */
export function createQueueClient(options: NodeClientOptions): NodeQueueClient {
  return new NodeQueueClient(options);
}

export { type AddedJob, type AddOptions, type ClientOptions, jobOptions, QueueClient } from "./client.js";
export * from "./errors.js";
export * from "./generated.js";
export type { RetryOptions } from "./interceptors.js";
export * from "./payloads.js";
export { isFinal, type WaitOptions, type WatchOptions } from "./watch.js";
export { createWorker, JobStopped, PermanentJobError, QueueWorker, type StopReason, type WorkerJob, type WorkerOptions } from "./worker.js";
