/**
 * An OTLP/HTTP receiver for tests: accepts `POST /v1/traces` (and `/v1/metrics`) with protobuf bodies
 * and decodes them with the OpenTelemetry proto definitions (opentelemetry-proto, as shipped in
 * @opentelemetry/otlp-grpc-exporter-base@0.38).
 */
import { createServer, type Server } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { dirname, join } from "node:path";
import * as protoLoader from "@grpc/proto-loader";

const require = createRequire(import.meta.url);
const protoRoot = join(dirname(require.resolve("@opentelemetry/otlp-grpc-exporter-base/package.json")), "build", "protos");

const definitions = protoLoader.loadSync(
  ["opentelemetry/proto/collector/trace/v1/trace_service.proto", "opentelemetry/proto/collector/metrics/v1/metrics_service.proto"],
  { includeDirs: [protoRoot], keepCase: false, longs: String, enums: String, bytes: Buffer, defaults: true },
);
const traceExport = (definitions["opentelemetry.proto.collector.trace.v1.TraceService"] as protoLoader.ServiceDefinition).Export!;
const metricsExport = (definitions["opentelemetry.proto.collector.metrics.v1.MetricsService"] as protoLoader.ServiceDefinition).Export!;

/** A received span, flattened. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  attributes: Record<string, unknown>;
  service: string;
}

export interface OtlpReceiver {
  readonly url: string;
  readonly spans: ReceivedSpan[];
  readonly metricNames: Set<string>;
  readonly contentTypes: Set<string>;
  close(): Promise<void>;
}

type KeyValue = { key: string; value: Record<string, unknown> };
const attributeValue = (v: Record<string, unknown>) => v.stringValue ?? v.intValue ?? v.doubleValue ?? v.boolValue ?? v.value;
const hex = (b: Buffer) => Buffer.from(b).toString("hex");

/** Starts the receiver on a loopback port. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const metricNames = new Set<string>();
  const contentTypes = new Set<string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      contentTypes.add(String(req.headers["content-type"]));
      const body = Buffer.concat(chunks);
      if (req.url === "/v1/traces") {
        const decoded = traceExport.requestDeserialize(body) as {
          resourceSpans: { resource: { attributes: KeyValue[] }; scopeSpans: { spans: Record<string, unknown>[] }[] }[];
        };
        for (const rs of decoded.resourceSpans) {
          const service = String(attributeValue(rs.resource.attributes.find((a) => a.key === "service.name")?.value ?? {}) ?? "");
          for (const ss of rs.scopeSpans) {
            for (const s of ss.spans) {
              spans.push({
                traceId: hex(s.traceId as Buffer),
                spanId: hex(s.spanId as Buffer),
                parentSpanId: hex(s.parentSpanId as Buffer),
                name: s.name as string,
                kind: s.kind as string,
                attributes: Object.fromEntries((s.attributes as KeyValue[]).map((a) => [a.key, attributeValue(a.value)])),
                service,
              });
            }
          }
        }
      } else if (req.url === "/v1/metrics") {
        const decoded = metricsExport.requestDeserialize(body) as { resourceMetrics: { scopeMetrics: { metrics: { name: string }[] }[] }[] };
        for (const rm of decoded.resourceMetrics) for (const sm of rm.scopeMetrics) for (const m of sm.metrics) metricNames.add(m.name);
      }
      res.writeHead(200, { "content-type": "application/x-protobuf" });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    metricNames,
    contentTypes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
