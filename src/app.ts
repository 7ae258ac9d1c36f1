/**
 * The service, assembled: tokens, health, the one-port server, the database, the engine. `start()`
 * listens first (health NOT_SERVING, RPCs UNAVAILABLE) and becomes ready once the database and
 * the engine are up; `stop()` drains in the reverse order and stops an embedded database last.
 */

import http2 from "node:http2";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Config } from "./config.js";
import { type Database, openDatabase } from "./db/database.js";
import { isDatabaseUnavailable } from "./db/errors.js";
import { type Dispatcher, startDispatcher } from "./engine/dispatcher.js";
import { type Engine, startEngine } from "./engine/engine.js";
import { UnavailableError } from "./engine/errors.js";
import { liveRegistry } from "./engine/registry.js";
import { HealthMonitor } from "./health.js";
import type { Logger } from "./logger.js";
import { type CallTransport, transportKey } from "./rpc/call-context.js";
import { StreamLimits } from "./rpc/stream-limits.js";
import { apiRateLimitInterceptor } from "./server/api-rate-limit.js";
import { withCors } from "./server/cors.js";
import { httpRoutes } from "./server/http-routes.js";
import { authInterceptor, readinessInterceptor, requestContextInterceptor } from "./server/interceptors.js";
import { listenOnePort, type OnePortServer } from "./server/one-port-server.js";
import { routes } from "./server/routes.js";
import { telemetryInterceptor } from "./server/telemetry-interceptor.js";
import { developmentTokens, parseTokens, type TokenStore } from "./server/tokens.js";
import { defaultUiDir, uiRoutes } from "./server/ui-assets.js";
import { createMetricsTelemetry, jobAttributes, type MetricsTelemetry } from "./telemetry/instruments.js";
import { concurrencySettings, createProcessors, type Processors, serviceRegistry } from "./workers/registry.js";

/** Backoff while the database is unreachable at start. */
export const START_RETRY_MIN_MS = 500;
export const START_RETRY_MAX_MS = 15_000;

/** How often the database is probed for the health report. */
export const DATABASE_PROBE_INTERVAL_MS = 2000;

/** A running service. */
export interface Service {
  readonly port: number;
  readonly host: string;
  readonly health: HealthMonitor;
  /** Resolves once the database and the engine are up (rejects if they fail to start). */
  readonly ready: Promise<void>;
  /** The engine, once started (for diagnostics and tests). */
  readonly engine: Engine | undefined;
  /** Graceful stop: stop accepting, end streams, drain jobs, close the database. */
  stop(): Promise<void>;
}

/** Loads the tokens: AUTH_TOKENS, or the generated development admin token. */
export function loadTokens(config: Config, logger: Logger): TokenStore {
  if (config.authTokens) return parseTokens(config.authTokens);
  const { store, path, created } = developmentTokens(config.dataDir);
  logger.warn(
    { tokenFile: path },
    `AUTH_TOKENS is not set: ${created ? "generated" : "using"} a development admin token in ${path}. ` +
      `Call the API with: -H "Authorization: Bearer $(cat ${path})"`,
  );
  return store;
}

/** Starts the service. `env` holds the standard OTEL_* variables (default: the process's). */
export async function startService(config: Config, logger: Logger, env: NodeJS.ProcessEnv = process.env): Promise<Service> {
  const tokens = loadTokens(config, logger);
  const telemetry = await createMetricsTelemetry(env);
  const health = new HealthMonitor(["database", "engine", "workers", "event_listener"]);
  const shutdown = new AbortController();
  // Built-in queues and types, and (once the engine's catalog has loaded) the registered ones.
  const registry = liveRegistry(serviceRegistry(concurrencySettings(config)));
  // Jobs of a queue one replica runs at once: its policy's, none on an API-only replica.
  const concurrency = (queue: string) => (config.workersEnabled ? (registry.queue(queue)?.policy.concurrency ?? 0) : 0);
  const streams = new StreamLimits(config.maxStreams, config.maxStreamsPerPrincipal);
  let engine: Engine | undefined;
  const currentEngine = () => {
    if (!engine) throw new UnavailableError("the service is starting; retry shortly");
    return engine;
  };

  const handler = connectNodeAdapter({
    routes: routes({
      health,
      maxHealthWatches: config.maxHealthWatches,
      registry,
      engine: currentEngine,
      maxPayloadBytes: config.maxPayloadBytes,
      eventRetentionSeconds: config.eventRetentionSeconds,
      concurrency,
      streams,
      instruments: telemetry.instruments,
      maxStreamBytes: config.streamBufferBytes,
    }),
    contextValues: (req) => createContextValues().set(transportKey, transportOf(req)),
    interceptors: [
      telemetryInterceptor(telemetry.instruments),
      requestContextInterceptor(logger),
      readinessInterceptor(health),
      authInterceptor(tokens),
      apiRateLimitInterceptor(() => engine),
    ],
    readMaxBytes: config.maxMessageBytes,
    writeMaxBytes: 64 * 1024 * 1024,
    shutdownSignal: shutdown.signal,
    fallback: httpRoutes(
      health,
      { "/metrics": (req, res) => telemetry.prometheus.getMetricsRequestHandler(req as never, res as never) },
      config.uiEnabled ? uiRoutes({ dir: defaultUiDir(), tokens }) : undefined,
    ),
  });
  const server = await listenOnePort({
    host: config.host,
    port: config.port,
    handler: withCors(config.corsAllowedOrigins, handler),
    tls: config.tlsCertFile && config.tlsKeyFile ? { certFile: config.tlsCertFile, keyFile: config.tlsKeyFile } : undefined,
    firstByteTimeoutMs: config.firstByteTimeoutMs,
    requestReadTimeoutMs: config.requestReadTimeoutMs,
    http2IdleTimeoutMs: config.http2IdleTimeoutMs,
    maxConnections: config.maxConnections,
    logger,
  });

  let database: Database | undefined;
  let dispatcher: Dispatcher | undefined;
  let processors: Processors | undefined;
  let probe: NodeJS.Timeout | undefined;
  let stopped = false;

  const ready = (async () => {
    database = await openDatabase(config, logger);
    // A database that is not reachable yet (a rollout racing the database's own start) is waited
    // for, NOT_SERVING meanwhile; any other failure stops the start.
    for (let attempt = 1, delay = START_RETRY_MIN_MS; ; attempt++, delay = Math.min(delay * 2, START_RETRY_MAX_MS)) {
      if (stopped) return;
      try {
        engine = await startEngine({
          url: database.url,
          schema: config.databaseSchema,
          bossSchema: config.pgbossSchema,
          poolMax: config.databasePoolMax,
          bossPoolMax: config.pgbossPoolMax,
          registry,
          logger,
          idempotencyWindowSeconds: config.idempotencyWindowSeconds,
          groupCommit: { concurrency: config.groupCommitConcurrency, maxBatch: config.groupCommitMaxBatch },
          eventRetentionSeconds: config.eventRetentionSeconds,
          quotas: [{ type: "email:send", perMinute: config.emailRateLimitPerMinute, countPath: "to", unit: "recipients" }],
          schedules: [{ name: "analytics-aggregate", type: "analytics:aggregate", cron: config.analyticsSchedule, payload: {} }],
          externalWorkers: { maxWaiting: config.maxWaitingFetches, maxWaitingPerPrincipal: config.maxWaitingFetchesPerPrincipal },
          alerts: {
            intervalMs: config.alertEvaluationIntervalMs,
            webhooks: { allowedHosts: config.alertWebhookAllowedHosts, allowedNetworks: config.alertWebhookAllowedNetworks },
            webhookTimeoutMs: config.alertWebhookTimeoutMs,
          },
        });
        break;
      } catch (err) {
        if (!isDatabaseUnavailable(err)) throw err;
        health.set("database", "unhealthy", `unreachable: ${(err as Error).message}`);
        logger.warn({ err: (err as Error).message, attempt, retryInMs: delay }, "database unreachable; retrying");
        await sleep(delay, undefined, { signal: shutdown.signal }).catch(() => {});
      }
    }
    if (stopped) return;
    health.set("database", "healthy", "connected");
    health.set("engine", "healthy", "pg-boss started");
    const listening = engine.parts.listener;
    // Without the listener, streams and dispatch fall back to polling: degraded, still serving.
    health.set("event_listener", listening.connected() ? "healthy" : "degraded", listening.connected() ? "listening" : "connecting");
    listening.onStatus(({ connected, detail }) => health.set("event_listener", connected ? "healthy" : "degraded", detail));
    if (config.workersEnabled) {
      processors = createProcessors({
        config,
        pool: engine.parts.pool,
        schema: config.databaseSchema,
        analytics: engine.parts.analytics,
        attemptRunning: engine.parts.work.attemptRunning,
      });
      dispatcher = startDispatcher({
        pool: engine.parts.pool,
        registry,
        processors: processors.byType,
        listener: engine.parts.listener,
        work: engine.parts.work,
        logger,
        concurrency,
        pollIntervalMs: config.workerPollIntervalMs,
        gate: engine.parts.control,
        instruments: telemetry.instruments,
        progress: engine.parts.progress,
      });
      const running = dispatcher;
      engine.onResume((queue) => running.wake(queue));
      health.set("workers", "healthy", `running (${registry.queues.map((q) => `${q.name} ${concurrency(q.name)}`).join(", ")})`);
    } else {
      health.set("workers", "healthy", "disabled on this replica (WORKERS_ENABLED=false)");
    }
    observeGauges(telemetry, engine, { server, streams, dispatcher });
    probe = setInterval(() => void probeDatabase(engine!, health), DATABASE_PROBE_INTERVAL_MS);
    probe.unref();
    logger.info({ port: server.port }, "ready");
  })();
  ready.catch((err: Error) => logger.error({ err: err.message }, "start failed"));

  let stopping: Promise<void> | undefined;
  return {
    port: server.port,
    host: server.host,
    health,
    ready,
    get engine() {
      return engine;
    },
    stop() {
      stopping ??= (async () => {
        stopped = true;
        logger.info("stopping");
        health.stopping();
        shutdown.abort(new ConnectError("the server is shutting down; reconnect to another replica", Code.Unavailable));
        if (probe) clearInterval(probe);
        await Promise.race([ready.catch(() => {}), new Promise((r) => setTimeout(r, START_RETRY_MAX_MS))]);
        await Promise.all([
          server.close(config.shutdownGraceMs),
          (async () => {
            await dispatcher?.stop(config.shutdownGraceMs);
            processors?.close();
            await engine?.stop(config.shutdownGraceMs);
          })(),
        ]);
        await telemetry.shutdown().catch(() => {});
        await database?.embedded?.stop();
        logger.info("stopped");
      })();
      return stopping;
    },
  };
}

/** The gauges, read when metrics are collected: the queues' (cluster-wide, exact) and this replica's. */
function observeGauges(telemetry: MetricsTelemetry, engine: Engine, replica: { server: OnePortServer; streams: StreamLimits; dispatcher?: Dispatcher }): void {
  const { queueDepth, queueActive, leasesHeld, streamsOpen, fetchesWaiting, connectionsOpen } = telemetry.instruments;
  telemetry.provider.getMeter("queue-service").addBatchObservableCallback(
    async (result) => {
      for (const q of await engine.parts.stats.all(60)) {
        for (const t of q.byType) {
          const attributes = jobAttributes(q.queue, t.type);
          result.observe(queueDepth, t.queued, attributes);
          result.observe(queueActive, t.active, attributes);
        }
      }
      for (const [type, n] of replica.dispatcher?.runningByType() ?? []) result.observe(leasesHeld, n, jobAttributes(type.queue, type.type));
      result.observe(streamsOpen, replica.streams.count);
      result.observe(fetchesWaiting, engine.parts.external.waiting());
      result.observe(connectionsOpen, replica.server.connections());
    },
    [queueDepth, queueActive, leasesHeld, streamsOpen, fetchesWaiting, connectionsOpen],
  );
}

/** How to cut a call's transport: reset its HTTP/2 stream, or close its HTTP/1.1 connection. */
function transportOf(req: { socket: unknown; stream?: unknown }): CallTransport {
  return {
    cut() {
      const stream = (req as { stream?: http2.ServerHttp2Stream }).stream;
      if (stream) stream.close(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
      else (req.socket as { destroy(): void }).destroy();
    },
  };
}

async function probeDatabase(engine: Engine, health: HealthMonitor): Promise<void> {
  try {
    await engine.parts.pool.query({ text: "SELECT 1", query_timeout: 1500 } as never);
    health.set("database", "healthy", "connected");
  } catch (err) {
    health.set("database", "unhealthy", `unreachable: ${(err as Error).message}`);
  }
}
