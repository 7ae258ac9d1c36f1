/**
 * Trace context across the boundaries the service crosses: incoming RPC headers, the envelope of a
 * job (so that each attempt's span belongs to the AddJob's trace), and log lines.
 */
import { type Context, context, propagation, ROOT_CONTEXT, type Span, trace } from "@opentelemetry/api";

const traceparentPattern = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/** The W3C traceparent of the active span, or `fallback` (an incoming header) when nothing is traced. */
export function currentTraceparent(fallback?: string | null): string | undefined {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  const own = carrier.traceparent;
  if (own && traceparentPattern.test(own)) return own;
  return fallback && traceparentPattern.test(fallback) ? fallback : undefined;
}

/** The context a stored traceparent continues. */
export function contextFromTraceparent(traceparent: string | undefined): Context {
  if (!traceparent) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent });
}

/** The trace id of a span, for log lines (undefined when not traced). */
export function traceIdOf(span: Span | undefined): string | undefined {
  const ctx = span?.spanContext();
  return ctx && trace.isSpanContextValid(ctx) ? ctx.traceId : undefined;
}
