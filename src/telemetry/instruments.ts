/**
 * The service's metric instruments (OpenTelemetry), exported over OTLP when configured and always on
 * `GET /metrics` in Prometheus text. Counters are per replica (Prometheus sums them); the queue gauges
 * are cluster-wide counts read when scraped.
 */
import type { Attributes, Counter, Histogram, Meter, ObservableGauge } from "@opentelemetry/api";
import { MeterProvider, PeriodicExportingMetricReader, type MetricReader } from "@opentelemetry/sdk-metrics";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";

/** The instruments. */
export interface Instruments {
  jobsAdded: Counter;
  jobsStarted: Counter;
  jobsCompleted: Counter;
  jobsFailed: Counter;
  jobsRetried: Counter;
  jobsDeadLettered: Counter;
  jobsCancelled: Counter;
  /** Seconds one attempt ran. */
  runDuration: Histogram;
  /** Seconds from when a job could start to when it started. */
  waitDuration: Histogram;
  /** Milliseconds an RPC took (streams: until they ended). */
  rpcDuration: Histogram;
  queueDepth: ObservableGauge;
  queueActive: ObservableGauge;
}

/** Attributes of a job's metrics. */
export const jobAttributes = (queue: string, type: string): Attributes => ({ "job.queue": queue, "job.type": type });

const seconds = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** Creates the instruments on `meter`. */
export function createInstruments(meter: Meter): Instruments {
  const counter = (name: string, description: string) => meter.createCounter(name, { description, unit: "{job}" });
  return {
    jobsAdded: counter("queue_service.jobs.added", "Jobs added (AddJob, AddJobs)"),
    jobsStarted: counter("queue_service.jobs.started", "Attempts started by this replica's workers"),
    jobsCompleted: counter("queue_service.jobs.completed", "Jobs completed by this replica's workers"),
    jobsFailed: counter("queue_service.jobs.failed", "Jobs failed for good by this replica's workers"),
    jobsRetried: counter("queue_service.jobs.retried", "Attempts that failed with a retry scheduled"),
    jobsDeadLettered: counter("queue_service.jobs.dead_lettered", "Jobs moved to a dead letter queue"),
    jobsCancelled: counter("queue_service.jobs.cancelled", "Running jobs that stopped on a cancel request"),
    runDuration: meter.createHistogram("queue_service.job.run.duration", { description: "How long one attempt ran", unit: "s", advice: { explicitBucketBoundaries: seconds } }),
    waitDuration: meter.createHistogram("queue_service.job.wait.duration", { description: "From when a job could start to when it started", unit: "s", advice: { explicitBucketBoundaries: seconds } }),
    rpcDuration: meter.createHistogram("rpc.server.duration", { description: "Duration of RPCs (streams until they end)", unit: "ms" }),
    queueDepth: meter.createObservableGauge("queue_service.queue.depth", { description: "Jobs ready to run now", unit: "{job}" }),
    queueActive: meter.createObservableGauge("queue_service.queue.active", { description: "Jobs running now", unit: "{job}" }),
  };
}

/** A service's meters: a Prometheus reader for /metrics, plus OTLP when configured. */
export interface MetricsTelemetry {
  readonly provider: MeterProvider;
  readonly instruments: Instruments;
  readonly prometheus: PrometheusExporter;
  shutdown(): Promise<void>;
}

/** Whether the environment asks for OTLP metrics. */
export function metricExportConfigured(env: NodeJS.ProcessEnv): boolean {
  const exporter = env.OTEL_METRICS_EXPORTER?.trim();
  if (exporter) return exporter.split(",").some((e) => e.trim() === "otlp");
  return Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT || env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT);
}

/** Creates the service's meter provider. */
export async function createMetricsTelemetry(env: NodeJS.ProcessEnv = process.env): Promise<MetricsTelemetry> {
  const prometheus = new PrometheusExporter({ preventServerStart: true });
  const readers: MetricReader[] = [prometheus];
  if (metricExportConfigured(env) && env.OTEL_SDK_DISABLED !== "true") {
    const protocol = env.OTEL_EXPORTER_OTLP_METRICS_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? "http/protobuf";
    const exporter =
      protocol === "grpc"
        ? new (await import("@opentelemetry/exporter-metrics-otlp-grpc")).OTLPMetricExporter()
        : protocol === "http/json"
          ? new (await import("@opentelemetry/exporter-metrics-otlp-http")).OTLPMetricExporter()
          : new (await import("@opentelemetry/exporter-metrics-otlp-proto")).OTLPMetricExporter();
    readers.push(new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: Number(env.OTEL_METRIC_EXPORT_INTERVAL ?? 60_000) }));
  }
  // queue-service unless OTEL_SERVICE_NAME says otherwise; OTEL_RESOURCE_ATTRIBUTES as the SDK reads them.
  const resource = resourceFromAttributes({ "service.name": "queue-service" }).merge(detectResources({ detectors: [envDetector] }));
  const provider = new MeterProvider({ resource, readers });
  return {
    provider,
    instruments: createInstruments(provider.getMeter("queue-service")),
    prometheus,
    shutdown: () => provider.shutdown(),
  };
}
