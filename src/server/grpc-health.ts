/**
 * The standard gRPC health service (`grpc.health.v1.Health`): Check, Watch and List for the
 * overall service ("") and each jobs.v1 service, SERVING once the database and the engine are up.
 * No authentication; open Watch streams are capped.
 */
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { Health, HealthCheckResponseSchema, HealthCheckResponse_ServingStatus as Status } from "../../gen/health/v1/health_pb.js";
import type { HealthMonitor } from "../health.js";

export interface GrpcHealthOptions {
  health: HealthMonitor;
  /** Service names reported besides "" (the whole server). */
  services: readonly string[];
  maxWatches: number;
}

/** Registers grpc.health.v1.Health. */
export function registerGrpcHealth(router: ConnectRouter, options: GrpcHealthOptions): void {
  const known = new Set(["", ...options.services]);
  const statusOf = () => (options.health.ready() ? Status.SERVING : Status.NOT_SERVING);
  let watches = 0;
  router.service(Health, {
    check(req) {
      if (!known.has(req.service)) throw new ConnectError(`unknown service ${req.service}`, Code.NotFound);
      return { status: statusOf() };
    },
    list() {
      const status = statusOf();
      return { statuses: Object.fromEntries([...known].map((name) => [name, create(HealthCheckResponseSchema, { status })])) };
    },
    async *watch(req, ctx) {
      if (watches >= options.maxWatches) throw new ConnectError("too many health watches", Code.ResourceExhausted);
      watches++;
      const changes: boolean[] = [];
      let wake: (() => void) | undefined;
      const unwatch = options.health.onReadinessChange((ready) => {
        changes.push(ready);
        wake?.();
      });
      // Also on abort, not only in finally: a generator whose HTTP/1.1 connection closed under a
      // write is never resumed by connect-node (see StreamLimits.open).
      let counted = true;
      const off = () => {
        unwatch();
        if (counted) watches--;
        counted = false;
      };
      const onAbort = () => {
        off();
        wake?.();
      };
      ctx.signal.addEventListener("abort", onAbort);
      try {
        if (!known.has(req.service)) {
          // The protocol says: report SERVICE_UNKNOWN and keep the stream open.
          yield { status: Status.SERVICE_UNKNOWN };
          await new Promise<void>((resolve) => (wake = resolve));
          return;
        }
        let last = statusOf();
        yield { status: last };
        while (!ctx.signal.aborted) {
          if (changes.length === 0) await new Promise<void>((resolve) => (wake = resolve));
          changes.length = 0;
          const now = statusOf();
          if (now !== last && !ctx.signal.aborted) {
            last = now;
            yield { status: now };
          }
        }
      } finally {
        off();
        ctx.signal.removeEventListener("abort", onAbort);
      }
    },
  });
}
