/**
 * One SERVER span per RPC, with the RPC semantic conventions (`rpc.system`, `rpc.service`,
 * `rpc.method`, `rpc.grpc.status_code`), continuing an incoming `traceparent`; a stream's span ends
 * when the stream ends. Also records `rpc.server.call.duration_seconds`. Outermost, so it sees the status the
 * client gets.
 */

import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { type Attributes, context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Instruments } from "../telemetry/instruments.js";

const tracer = () => trace.getTracer("queue-service");

/** The tracing and RPC metrics interceptor. */
export function telemetryInterceptor(instruments?: Instruments): Interceptor {
  return (next) => async (req) => {
    const carrier: Record<string, string> = {};
    req.header.forEach((value, key) => {
      carrier[key] = value;
    });
    const parent = propagation.extract(ROOT_CONTEXT, carrier);
    const contentType = req.header.get("content-type") ?? "";
    const attributes: Attributes = {
      "rpc.system": contentType.startsWith("application/grpc") ? "grpc" : "connect_rpc",
      "rpc.service": req.service.typeName,
      "rpc.method": req.method.name,
    };
    const span = tracer().startSpan(`${req.service.typeName}/${req.method.name}`, { kind: SpanKind.SERVER, attributes }, parent);
    const active = trace.setSpan(parent, span);
    const started = performance.now();
    let ended = false;
    const end = (err?: unknown) => {
      if (ended) return;
      ended = true;
      const code: number = err === undefined ? 0 : ConnectError.from(err).code;
      span.setAttribute("rpc.grpc.status_code", code);
      if (err !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: ConnectError.from(err).rawMessage });
      span.end();
      instruments?.rpcDuration.record((performance.now() - started) / 1000, { ...attributes, "rpc.grpc.status_code": code });
    };
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await context.with(active, () => next(req));
    } catch (err) {
      end(err);
      throw err;
    }
    if (!res.stream) {
      end();
      return res;
    }
    const messages = res.message;
    return {
      ...res,
      message: (async function* () {
        try {
          yield* messages;
          end();
        } catch (err) {
          end(err);
          throw err;
        } finally {
          end(new ConnectError("the client went away", Code.Canceled));
        }
      })(),
    };
  };
}
