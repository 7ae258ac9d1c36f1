/**
 * Cross-cutting concerns as Connect interceptors, outermost first: request context (id, logger,
 * one log line per call, error translation), readiness, authentication and authorisation.
 */
import { randomUUID } from "node:crypto";
import { Code, ConnectError, type Interceptor, type StreamResponse, type UnaryResponse } from "@connectrpc/connect";
import { trace } from "@opentelemetry/api";
import { isDatabaseUnavailable } from "../db/errors.js";
import type { HealthMonitor } from "../health.js";
import type { Logger } from "../logger.js";
import { principalKey, requestIdKey } from "../rpc/call-context.js";
import { toConnectError } from "../rpc/errors.js";
import { traceIdOf } from "../telemetry/trace-context.js";
import { accessFor, allows } from "./access-policy.js";
import type { TokenStore } from "./tokens.js";

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * Gives each call a request id and a logger, logs one line when it ends (streams: when the stream
 * ends) and turns any error into a ConnectError a client may see (never UNKNOWN, never a stack).
 */
export function requestContextInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const incoming = req.header.get("x-request-id");
    const requestId = incoming && requestIdPattern.test(incoming) ? incoming : randomUUID();
    const rpc = `${req.service.typeName}/${req.method.name}`;
    const traceId = traceIdOf(trace.getActiveSpan());
    // The call's logger, made when first used.
    let child: Logger | undefined;
    const log = () => (child ??= logger.child(traceId ? { requestId, rpc, traceId } : { requestId, rpc }));
    req.contextValues.set(requestIdKey, requestId);
    const finish = (err: unknown) => {
      const level = err !== undefined && (err as ConnectError).code === Code.Internal ? "error" : "info";
      if (!logger.isLevelEnabled(level)) return;
      const principal = req.contextValues.get(principalKey)?.name;
      const durationMs = Math.round((performance.now() - started) * 10) / 10;
      const code = err === undefined ? "ok" : Code[(err as ConnectError).code]?.toString();
      log()[level]({ principal, code, durationMs }, "rpc");
    };
    const translate = (err: unknown) =>
      hungUp(err, req.signal) ? new ConnectError("the client closed the call", Code.Canceled) : toConnectError(err, log(), requestId);
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (err) {
      const translated = translate(err);
      finish(translated);
      throw translated;
    }
    res.header.set("x-request-id", requestId);
    if (!res.stream) {
      finish(undefined);
      return res;
    }
    return { ...res, message: guardStream(res.message, translate, finish) };
  };
}

/**
 * Whether a call failed because its client went away (hung up a stream, reset it, closed the
 * connection): that is the client's choice, CANCELED, and no error of the service. A ConnectError
 * the service chose (UNAVAILABLE at shutdown, say) keeps its code.
 */
function hungUp(err: unknown, signal: AbortSignal): boolean {
  if (err instanceof ConnectError && err.code !== Code.Unknown && err.code !== Code.Internal) return false;
  // A database that went away says so with codes a client's hang-up also has (ECONNRESET): not this.
  if (isDatabaseUnavailable(err)) return false;
  return signal.aborted || (err as { code?: unknown } | undefined)?.code === "ERR_STREAM_PREMATURE_CLOSE";
}

async function* guardStream<T>(messages: AsyncIterable<T>, translate: (err: unknown) => ConnectError, finish: (err: unknown) => void): AsyncGenerator<T> {
  let failure: ConnectError | undefined;
  try {
    yield* messages;
  } catch (err) {
    failure = translate(err);
    throw failure;
  } finally {
    finish(failure);
  }
}

/** Refuses non-public RPCs with UNAVAILABLE until the service is ready (and once it is stopping), saying why. */
export function readinessInterceptor(health: HealthMonitor): Interceptor {
  return (next) => async (req) => {
    if (!health.ready() && accessFor(req.service.typeName, req.method.name) !== "public") {
      const why = health
        .components()
        .filter((c) => c.status === "unhealthy")
        .map((c) => `${c.name}: ${c.detail}`);
      throw new ConnectError(`the service is not ready (${why.length > 0 ? why.join("; ") : "stopping"}); retry shortly`, Code.Unavailable);
    }
    return next(req);
  };
}

/**
 * Authenticates `authorization: Bearer <token>` and checks the RPC's required role before the
 * handler runs: no or unknown token is UNAUTHENTICATED, a role that is not enough is
 * PERMISSION_DENIED. Public RPCs (health, reflection) need no token.
 */
export function authInterceptor(tokens: TokenStore): Interceptor {
  return (next) => async (req) => {
    const access = accessFor(req.service.typeName, req.method.name);
    const header = req.header.get("authorization");
    if (header === null) {
      if (access === "public") return next(req);
      throw new ConnectError("missing authorization: send `authorization: Bearer <token>`", Code.Unauthenticated);
    }
    const match = /^Bearer\s+(\S{1,4096})\s*$/i.exec(header);
    const principal = match ? tokens.verify(match[1]!) : undefined;
    if (!principal) {
      if (access === "public") return next(req);
      throw new ConnectError("invalid bearer token", Code.Unauthenticated);
    }
    req.contextValues.set(principalKey, principal);
    if (!allows(principal.role, access)) {
      throw new ConnectError(`${req.method.name} needs the ${access} role; ${principal.name} has ${principal.role}`, Code.PermissionDenied);
    }
    return next(req);
  };
}
