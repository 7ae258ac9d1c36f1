/**
 * The service's metric instruments (OpenTelemetry), exported over OTLP when configured and always on
 * `GET /metrics` in Prometheus text. Counters are per replica (Prometheus sums them); the queue gauges
 * are cluster-wide counts read when scraped; the others describe this replica.
 *
 * Names follow Prometheus conventions as they appear on /metrics: base units in the name
 * (`_seconds`), counters ending `_total` (the exporter appends it), `snake_case` labels (the
 * attributes' dots become `_`). The OpenTelemetry-to-Prometheus exporter of this version adds no unit
 * suffix, so the unit is part of each instrument's name: OTLP receivers see the same names, with
 * dots, and the attributes as they are (`job.queue`). The table in the README is
 * printed from {@link METRICS} (`npm run docs:metrics`), and a test keeps it current.
 */
import type { Attributes, Counter, Histogram, Meter, ObservableGauge } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { detectResources, envDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, type MetricReader, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";

/** The labels of job metrics. */
const JOB = ["job_queue", "job_type"];
/** The labels of RPC metrics. */
const RPC = ["rpc_system", "rpc_service", "rpc_method", "rpc_grpc_status_code"];

/** One metric: how it is created and how it is documented. */
interface MetricSpec {
  /** The OpenTelemetry instrument name (its Prometheus name replaces the dots with `_`). */
  readonly name: string;
  readonly kind: "counter" | "histogram" | "gauge";
  readonly unit: string;
  readonly description: string;
  readonly labels: readonly string[];
}

const spec = <K extends MetricSpec["kind"]>(
  name: string,
  kind: K,
  unit: string,
  description: string,
  labels: readonly string[] = [],
): MetricSpec & { readonly kind: K } => ({ name, kind, unit, description, labels });

/** Every metric of the service, keyed by its field in {@link Instruments}. */
export const METRICS = {
  jobsAdded: spec("queue_service.jobs.added", "counter", "{job}", "Jobs added through AddJob and AddJobs (not deduplicated repeats).", JOB),
  jobsStarted: spec("queue_service.jobs.started", "counter", "{job}", "Attempts this replica's workers started.", JOB),
  jobsCompleted: spec("queue_service.jobs.completed", "counter", "{job}", "Jobs this replica's workers completed.", JOB),
  jobsFailed: spec("queue_service.jobs.failed", "counter", "{job}", "Jobs this replica's workers failed for good.", JOB),
  jobsRetried: spec("queue_service.jobs.retried", "counter", "{job}", "Attempts that failed with a retry scheduled.", JOB),
  jobsDeadLettered: spec("queue_service.jobs.dead_lettered", "counter", "{job}", "Jobs moved to a dead letter queue by this replica's workers.", JOB),
  jobsCancelled: spec("queue_service.jobs.cancelled", "counter", "{job}", "Running jobs that stopped on a cancel request.", JOB),
  runDuration: spec("queue_service.job.run.duration_seconds", "histogram", "s", "How long one attempt ran.", [...JOB, "job_outcome"]),
  waitDuration: spec("queue_service.job.wait.duration_seconds", "histogram", "s", "From when a job could start to when it started.", JOB),
  rpcDuration: spec("rpc.server.call.duration_seconds", "histogram", "s", "How long an RPC took (a stream: until it ended).", RPC),
  queueDepth: spec("queue_service.queue.depth", "gauge", "{job}", "Jobs ready to run now, cluster-wide.", JOB),
  queueActive: spec("queue_service.queue.active", "gauge", "{job}", "Jobs running now, cluster-wide.", JOB),
  leasesHeld: spec("queue_service.leases.held", "gauge", "{job}", "Attempts this replica runs now (the leases it holds).", JOB),
  streamsOpen: spec("queue_service.streams.open", "gauge", "{stream}", "WatchJob, WatchJobs and WatchMetrics streams open on this replica.", []),
  fetchesWaiting: spec("queue_service.fetches.waiting", "gauge", "{call}", "WorkerService.FetchJobs calls waiting for jobs on this replica (long polls).", []),
  connectionsOpen: spec("queue_service.connections.open", "gauge", "{connection}", "Client connections (HTTP/1.1 and HTTP/2) open on this replica.", []),
} as const satisfies Record<string, MetricSpec>;

/** The instruments. */
export type Instruments = {
  [K in keyof typeof METRICS]: (typeof METRICS)[K]["kind"] extends "counter"
    ? Counter
    : (typeof METRICS)[K]["kind"] extends "histogram"
      ? Histogram
      : ObservableGauge;
};

/** Attributes of a job's metrics (and spans); Prometheus shows them as `job_queue`, `job_type`. */
export const jobAttributes = (queue: string, type: string): Attributes => ({ "job.queue": queue, "job.type": type });

const seconds = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** Creates the instruments on `meter`. */
export function createInstruments(meter: Meter): Instruments {
  const out: Record<string, unknown> = {};
  for (const [key, m] of Object.entries(METRICS) as [string, MetricSpec][]) {
    const options = { description: m.description, unit: m.unit };
    out[key] =
      m.kind === "counter"
        ? meter.createCounter(m.name, options)
        : m.kind === "histogram"
          ? meter.createHistogram(m.name, { ...options, advice: { explicitBucketBoundaries: seconds } })
          : meter.createObservableGauge(m.name, options);
  }
  return out as Instruments;
}

/** The Prometheus name of a metric, as /metrics shows it (a histogram's series add `_bucket`, `_sum`, `_count`). */
export function prometheusName(m: MetricSpec): string {
  const base = m.name.replace(/[^A-Za-z0-9_]/g, "_");
  return m.kind === "counter" ? `${base}_total` : base;
}

/** The metrics table of the README, in Markdown. */
export function metricsTable(): string {
  const rows = Object.values(METRICS).map((m: MetricSpec) => {
    const names = m.kind === "histogram" ? ["_bucket", "_sum", "_count"].map((s) => `\`${prometheusName(m)}${s}\``).join(", ") : `\`${prometheusName(m)}\``;
    return `| ${names} | ${m.kind} | ${m.labels.map((l) => `\`${l}\``).join(", ")} | ${m.description} |`;
  });
  return ["| Prometheus name | type | labels | meaning |", "|---|---|---|---|", ...rows].join("\n");
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
