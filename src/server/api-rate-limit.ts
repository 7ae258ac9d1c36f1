/**
 * API rate limits (scope API_PRINCIPAL): a token bucket per principal, cluster-wide without a
 * database round trip per call. Each replica enforces its share of the limit (limit / live replicas)
 * in memory; shares follow the limits (refreshed every second) and the number of replicas. Over the
 * limit: RESOURCE_EXHAUSTED with RetryInfo. Public RPCs (health, reflection) are not limited.
 */
import type { Interceptor } from "@connectrpc/connect";
import type { Engine } from "../engine/engine.js";
import { ResourceExhaustedError } from "../engine/errors.js";
import { principalKey } from "../rpc/call-context.js";
import { accessFor } from "./access-policy.js";

interface Bucket {
  capacity: number;
  perMs: number;
  tokens: number;
  at: number;
  signature: string;
}

/** The API rate limit interceptor (after authentication). */
export function apiRateLimitInterceptor(engine: () => Engine | undefined): Interceptor {
  const buckets = new Map<string, Bucket>();
  return (next) => async (req) => {
    const principal = req.contextValues.get(principalKey);
    const e = engine();
    if (!principal || !e || accessFor(req.service.typeName, req.method.name) === "public") return next(req);
    const limit = e.limits.list().find((l) => l.scope === "api_principal" && l.key === principal.name);
    if (!limit) {
      buckets.delete(principal.name);
      return next(req);
    }
    const replicas = e.parts.replicas.count();
    const signature = `${limit.max_events}/${limit.interval_ms}/${replicas}`;
    const now = performance.now();
    let b = buckets.get(principal.name);
    if (!b || b.signature !== signature) {
      const capacity = Math.max(1, limit.max_events / replicas);
      const fill = b ? b.tokens / b.capacity : 1;
      b = { capacity, perMs: capacity / Number(limit.interval_ms), tokens: capacity * fill, at: now, signature };
      buckets.set(principal.name, b);
    }
    b.tokens = Math.min(b.capacity, b.tokens + (now - b.at) * b.perMs);
    b.at = now;
    if (b.tokens < 1) {
      const retryAfterMs = Math.ceil((1 - b.tokens) / b.perMs);
      throw new ResourceExhaustedError(
        `${principal.name} is over its API rate limit of ${limit.max_events} call${limit.max_events === 1 ? "" : "s"} per ${Number(limit.interval_ms) / 1000} s; retry in ${retryAfterMs} ms`,
        retryAfterMs,
      );
    }
    b.tokens -= 1;
    return next(req);
  };
}
