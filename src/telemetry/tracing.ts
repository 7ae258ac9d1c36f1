/**
 * Process-wide tracing from the standard OTEL_* variables: spans are exported over OTLP (http/protobuf
 * by default, http/json or grpc with OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL) when an endpoint is set
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) or OTEL_TRACES_EXPORTER says so,
 * and not at all otherwise. PostgreSQL queries and outgoing HTTP calls get spans of their own.
 *
 * Must start before `pg` is loaded (main.ts imports the service afterwards), so that the
 * instrumentations can hook it.
 */
import { register } from "node:module";
import type { NodeSDK } from "@opentelemetry/sdk-node";

/** A started tracing setup. */
export interface Tracing {
  readonly exporting: boolean;
  shutdown(): Promise<void>;
}

/** Whether the environment asks for trace export. */
export function traceExportConfigured(env: NodeJS.ProcessEnv): boolean {
  const exporter = env.OTEL_TRACES_EXPORTER?.trim();
  if (exporter) return exporter !== "none";
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT);
}

/** Starts tracing; a no-op (spans are dropped) when no exporter is configured. */
export async function startTracing(env: NodeJS.ProcessEnv = process.env): Promise<Tracing> {
  if (!traceExportConfigured(env) || env.OTEL_SDK_DISABLED === "true") return { exporting: false, shutdown: async () => {} };
  // ESM modules (and the CommonJS ones they import) are hooked through the loader.
  register("@opentelemetry/instrumentation/hook.mjs", import.meta.url);
  const [
    { NodeSDK: SDK },
    { PgInstrumentation },
    { UndiciInstrumentation },
    { BatchSpanProcessor },
    { W3CTraceContextPropagator, W3CBaggagePropagator, CompositePropagator },
  ] = await Promise.all([
    import("@opentelemetry/sdk-node"),
    import("@opentelemetry/instrumentation-pg"),
    import("@opentelemetry/instrumentation-undici"),
    import("@opentelemetry/sdk-trace"),
    import("@opentelemetry/core"),
  ]);
  const protocol = env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf";
  const exporter =
    protocol === "grpc"
      ? new (await import("@opentelemetry/exporter-trace-otlp-grpc")).OTLPTraceExporter()
      : protocol === "http/json"
        ? new (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter()
        : new (await import("@opentelemetry/exporter-trace-otlp-proto")).OTLPTraceExporter();
  const sdk: NodeSDK = new SDK({
    serviceName: env.OTEL_SERVICE_NAME ?? "queue-service",
    spanProcessors: [new BatchSpanProcessor({ exporter })],
    metricReaders: [],
    textMapPropagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    instrumentations: [
      // Only queries made inside a traced operation (an RPC, a job), not the workers' polling.
      new PgInstrumentation({ requireParentSpan: true, enhancedDatabaseReporting: false }),
      new UndiciInstrumentation(),
    ],
  });
  sdk.start();
  return { exporting: true, shutdown: () => sdk.shutdown() };
}
