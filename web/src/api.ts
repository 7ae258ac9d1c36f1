/**
 * The dashboard's way to the service: the generated clients of gen/ over Connect-Web on the page's
 * own origin (same-origin, so no CORS), with the signed-in bearer token on every call. The token
 * lives in sessionStorage (gone with the tab; never in a URL or a log).
 */
import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { JobService } from "../../gen/jobs/v1/job_service_pb.js";
import { MonitoringService } from "../../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../../gen/jobs/v1/queue_service_pb.js";

const TOKEN_KEY = "queue-service.token";

export type Role = "service" | "worker" | "admin";
export interface Session {
  principal: string;
  role: Role;
}

const signedOutListeners = new Set<(reason: string) => void>();

export const tokenStore = {
  get: () => sessionStorage.getItem(TOKEN_KEY) ?? undefined,
  set: (token: string) => sessionStorage.setItem(TOKEN_KEY, token),
  clear: () => sessionStorage.removeItem(TOKEN_KEY),
};

/** Called when the service refuses the token (expired, rotated away): back to sign-in, saying why. */
export function onSignedOut(listener: (reason: string) => void): () => void {
  signedOutListeners.add(listener);
  return () => signedOutListeners.delete(listener);
}

const bearer: Interceptor = (next) => async (req) => {
  const token = tokenStore.get();
  if (token) req.header.set("authorization", `Bearer ${token}`);
  try {
    return await next(req);
  } catch (err) {
    if (ConnectError.from(err).code === Code.Unauthenticated) {
      tokenStore.clear();
      for (const l of signedOutListeners) l("The service no longer accepts your token (it may have been rotated). Sign in again.");
    }
    throw err;
  }
};

export const transport = createConnectTransport({ baseUrl: window.location.origin, useBinaryFormat: true, interceptors: [bearer] });

/** For streams (connect-query covers unary calls). */
export const clients = {
  jobs: createClient(JobService, transport),
  queues: createClient(QueueService, transport),
  monitoring: createClient(MonitoringService, transport),
};

/** Who `token` belongs to; throws a message for the sign-in form when the service refuses it. */
export async function signIn(token: string): Promise<Session> {
  const res = await fetch("/ui/session", { headers: { authorization: `Bearer ${token}` }, cache: "no-store" });
  if (res.status === 401) throw new Error("The service does not know this token. Check it and try again.");
  if (!res.ok) throw new Error(`The service answered ${res.status}; try again in a moment.`);
  const session = (await res.json()) as Session;
  tokenStore.set(token);
  return session;
}

/** The message to show for a failed call, with what to do when there is something to do. */
export function describeError(err: unknown): string {
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.PermissionDenied:
      return "Your token's role does not allow this. An admin token does.";
    case Code.Unavailable:
      return "The service is unavailable (restarting, or its database is down). This page retries by itself.";
    case Code.NotFound:
      return `Not found: ${e.rawMessage}. It may belong to another principal, or retention removed it.`;
    case Code.ResourceExhausted:
      return `Too many requests or streams: ${e.rawMessage}. Close some dashboard tabs, or wait a moment.`;
    default:
      return e.rawMessage;
  }
}
