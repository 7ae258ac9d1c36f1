/**
 * Real clients for tests: Connect-ES over each protocol and HTTP version, and @grpc/grpc-js.
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";

export type Protocol = "connect" | "grpc" | "grpc-web";
export type HttpVersion = "1.1" | "2";

export interface ClientOptions {
  protocol?: Protocol;
  httpVersion?: HttpVersion;
  token?: string;
  binary?: boolean;
}

function bearer(token: string | undefined): Interceptor[] {
  if (!token) return [];
  return [
    (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    },
  ];
}

/** A Connect transport to `baseUrl`. gRPC always uses HTTP/2. */
export function transport(baseUrl: string, options: ClientOptions = {}): Transport {
  const protocol = options.protocol ?? "connect";
  const httpVersion = options.httpVersion ?? "2";
  const common = { baseUrl, interceptors: bearer(options.token), useBinaryFormat: options.binary ?? true };
  if (protocol === "grpc") return createGrpcTransport({ ...common });
  if (protocol === "grpc-web") return createGrpcWebTransport({ ...common, httpVersion });
  return createConnectTransport({ ...common, httpVersion });
}

/** A typed client of `service`. */
export function client<S extends DescService>(service: S, baseUrl: string, options: ClientOptions = {}): Client<S> {
  return createClient(service, transport(baseUrl, options));
}

/** Every protocol and HTTP version combination the one port serves. */
export const protocolMatrix: { protocol: Protocol; httpVersion: HttpVersion }[] = [
  { protocol: "connect", httpVersion: "1.1" },
  { protocol: "connect", httpVersion: "2" },
  { protocol: "grpc", httpVersion: "2" },
  { protocol: "grpc-web", httpVersion: "1.1" },
  { protocol: "grpc-web", httpVersion: "2" },
];
