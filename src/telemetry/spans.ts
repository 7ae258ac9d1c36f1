/**
 * A span around a provider call, child of the job attempt's span, so one trace shows
 * AddJob -> each attempt -> the provider call. No payload in attributes.
 */
import { type Attributes, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";

const tracer = trace.getTracer("queue-service");

/** Runs `fn` inside a CLIENT span named `name`. */
export async function providerSpan<T>(name: string, attributes: Attributes, fn: () => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { kind: SpanKind.CLIENT, attributes }, async (span) => {
    try {
      return await fn();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR, message: (err as Error).message });
      throw err;
    } finally {
      span.end();
    }
  });
}
