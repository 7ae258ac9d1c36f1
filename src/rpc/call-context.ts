/**
 * Typed per-request values set by the interceptors and read by the handlers.
 */
import { createContextKey, type HandlerContext } from "@connectrpc/connect";
import { UnavailableError } from "../engine/index.js";

/**
 * What a principal may do: `service` adds and reads its own jobs; `worker` runs the jobs of the types
 * that name it (WorkerService) and nothing else; `admin` does everything.
 */
export type Role = "service" | "worker" | "admin";

/** An authenticated caller. */
export interface Principal {
  /** The token's name, recorded as `created_by` and used for ownership and rate limits. */
  readonly name: string;
  readonly role: Role;
}

/** The authenticated caller; undefined on public RPCs called without a token. */
export const principalKey = createContextKey<Principal | undefined>(undefined, { description: "principal" });

/** The request's id (from `x-request-id` when valid, else generated). */
export const requestIdKey = createContextKey<string>("", { description: "request id" });

/** The call's transport, for the rare case a stream must be cut without a status (a stuck consumer). */
export interface CallTransport {
  /** Resets the HTTP/2 stream with ENHANCE_YOUR_CALM (clients report RESOURCE_EXHAUSTED), or closes an HTTP/1.1 connection. */
  cut(): void;
}
export const transportKey = createContextKey<CallTransport | undefined>(undefined, { description: "call transport" });

/** The caller of an authenticated RPC. */
export function principalOf(ctx: HandlerContext): Principal {
  const principal = ctx.values.get(principalKey);
  // The auth interceptor runs before every non-public handler; reaching here without a principal is a wiring bug.
  if (!principal) throw new UnavailableError("no principal on an authenticated call");
  return principal;
}
