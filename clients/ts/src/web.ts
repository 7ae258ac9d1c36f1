/**
 * queue-service client for browsers (Connect-Web over fetch): the Connect protocol or gRPC-Web.
 * Plain gRPC needs HTTP/2 trailers, which browsers do not expose.
 */
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { type ClientOptions, clientInterceptors, QueueClient } from "./client.js";

export interface WebClientOptions extends ClientOptions {
  /** Default `connect`. */
  protocol?: "connect" | "grpc-web";
  /** A fetch to use instead of the global one. */
  fetch?: typeof globalThis.fetch;
}

/** A client of queue-service for browsers. */
export function createQueueClient(options: WebClientOptions): QueueClient {
  const common = { baseUrl: options.baseUrl, interceptors: clientInterceptors(options), ...(options.fetch ? { fetch: options.fetch } : {}) };
  const transport = options.protocol === "grpc-web" ? createGrpcWebTransport(common) : createConnectTransport(common);
  return new QueueClient(transport, options.retry);
}

export { type AddedJob, type AddOptions, type ClientOptions, jobOptions, QueueClient } from "./client.js";
export * from "./errors.js";
export * from "./generated.js";
export type { RetryOptions } from "./interceptors.js";
export * from "./payloads.js";
export { isFinal, type WaitOptions, type WatchOptions } from "./watch.js";
