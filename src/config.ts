/**
 * One typed configuration, read from environment variables at start.
 *
 * Every setting has its environment variable, its default and a line of documentation here; the
 * README's configuration table is printed from this list (`npm run docs:tables`). A bad value stops
 * the start with a message that names the variable and the rule.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { scheduleViolations } from "./engine/schedules.js";

/** One configuration setting: where it comes from, its default and what it means. */
export interface Setting<T> {
  readonly env: string;
  readonly default: string | undefined;
  readonly doc: string;
  readonly schema: z.ZodType<T>;
  /** Whether an empty value is a value of its own (otherwise empty means unset: the default). */
  readonly emptyIsValue?: boolean;
}

function setting<T>(env: string, schema: z.ZodType<T>, defaultValue: string | undefined, doc: string, emptyIsValue = false): Setting<T> {
  return { env, schema, default: defaultValue, doc, emptyIsValue };
}

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, `must be an integer from ${min} to ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const bool = z.enum(["true", "false", "1", "0", "yes", "no"], { error: "must be true or false" }).transform((v) => v === "true" || v === "1" || v === "yes");

const optionalString = z.string().min(1).optional();

/** Whether `cidr` is `address/prefix` with a valid address and prefix. */
function isCidr(cidr: string): boolean {
  const [address, prefix, ...rest] = cidr.split("/");
  const family = isIP(address ?? "");
  return rest.length === 0 && family !== 0 && /^\d{1,3}$/.test(prefix ?? "") && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** A comma-separated list (blank entries dropped). */
const list = z.string().transform((v) =>
  v
    .split(",")
    .map((h) => h.trim())
    .filter(Boolean),
);

const optionalUrl = z.url({ protocol: /^https?$/, error: "must be an http(s) URL" }).optional();

const identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, "must be a lower-case SQL identifier (letters, digits, _; at most 63)");

/** Every setting of the service. */
export const settings = {
  port: setting("PORT", int(0, 65535), "8080", "TCP port of the one port serving Connect, gRPC, gRPC-Web and HTTP (0: any free port)."),
  host: setting("HOST", z.string().min(1), "127.0.0.1", "Address to listen on. A non-loopback address needs TLS, or ALLOW_PLAINTEXT=true."),
  tlsCertFile: setting("TLS_CERT_FILE", optionalString, undefined, "PEM certificate chain; with TLS_KEY_FILE, serve TLS (HTTP/2 and HTTP/1.1 by ALPN)."),
  tlsKeyFile: setting("TLS_KEY_FILE", optionalString, undefined, "PEM private key for TLS_CERT_FILE."),
  allowPlaintext: setting("ALLOW_PLAINTEXT", bool, "false", "Allow a non-loopback HOST without TLS (behind a mesh or proxy that terminates TLS)."),
  nodeEnv: setting("NODE_ENV", z.string().min(1), "development", "`production` refuses the embedded database and a generated admin token."),
  databaseUrl: setting(
    "DATABASE_URL",
    optionalString,
    undefined,
    "PostgreSQL connection string. Unset: an embedded PostgreSQL in DATA_DIR/pg (development only).",
  ),
  databasePoolMax: setting("DATABASE_POOL_MAX", int(2, 500), "10", "Connections in the service's own pool (pg-boss keeps a pool of PGBOSS_POOL_MAX besides)."),
  pgbossPoolMax: setting("PGBOSS_POOL_MAX", int(2, 500), "10", "Connections in pg-boss's pool (workers, supervisor, LISTEN)."),
  databaseSchema: setting(
    "DATABASE_SCHEMA",
    identifier,
    "queue_service",
    "Schema of the service's own tables (events, idempotency keys, pauses, limits, alerts).",
  ),
  pgbossSchema: setting("PGBOSS_SCHEMA", identifier, "pgboss", "Schema of pg-boss's tables."),
  dataDir: setting("DATA_DIR", z.string().min(1), "./data", "Directory for the embedded database, the generated admin token and the email outbox."),
  authTokens: setting(
    "AUTH_TOKENS",
    optionalString,
    undefined,
    "Comma-separated `name:role:token` (role `service`, `worker` or `admin`; token may be `sha256:<hex>`). Unset: an admin token is generated into DATA_DIR/admin-token.",
  ),
  logFormat: setting(
    "LOG_FORMAT",
    z.enum(["auto", "json", "pretty"], { error: "must be auto, json or pretty" }),
    "auto",
    "`json` lines, or `pretty` readable lines for a terminal; `auto`: pretty when stdout is a terminal and NODE_ENV is not production, else JSON.",
  ),
  logLevel: setting(
    "LOG_LEVEL",
    z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"], { error: "must be one of fatal, error, warn, info, debug, trace, silent" }),
    "info",
    "pino log level.",
  ),
  shutdownGraceMs: setting(
    "SHUTDOWN_GRACE_MS",
    int(0, 600_000),
    "8000",
    "On SIGTERM/SIGINT: how long running jobs and requests may take to finish before the process exits anyway.",
  ),
  uiEnabled: setting("UI_ENABLED", bool, "true", "Serve the operations dashboard at /ui/ on the same port (and redirect browsers from / to it)."),
  corsAllowedOrigins: setting(
    "CORS_ALLOWED_ORIGINS",
    z
      .string()
      .transform((v) =>
        v
          .split(",")
          .map((o) => o.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.string().regex(/^(\*|https?:\/\/[^/\s]+)$/, "must be origins like https://app.example.com (scheme://host[:port]) or *"))),
    "",
    "Comma-separated origins (`https://app.example.com`) whose pages may call the API from a browser (Connect-Web); none by default.",
  ),
  firstByteTimeoutMs: setting(
    "FIRST_BYTE_TIMEOUT_MS",
    int(100, 600_000),
    "10000",
    "A connection that sends nothing (or no complete request head) for this long is closed.",
  ),
  requestReadTimeoutMs: setting(
    "REQUEST_READ_TIMEOUT_MS",
    int(100, 3_600_000),
    "60000",
    "A request whose message has not fully arrived this long after it began is cut off (HTTP/1.1: 408 and the connection closed; HTTP/2: the stream reset). Server streams' responses are not limited.",
  ),
  http2IdleTimeoutMs: setting(
    "HTTP2_IDLE_TIMEOUT_MS",
    int(1000, 86_400_000),
    "300000",
    "An HTTP/2 connection with no open stream for this long is closed gracefully (GOAWAY; clients reconnect on their next call).",
  ),
  maxConnections: setting(
    "MAX_CONNECTIONS",
    int(1, 1_000_000),
    "10000",
    "Client connections a replica holds at once (HTTP/1.1 and HTTP/2 together; an idle HTTP/2 connection costs ~35 KB); one over it is closed as it arrives.",
  ),
  maxMessageBytes: setting(
    "MAX_MESSAGE_BYTES",
    int(65_536, 64 * 1024 * 1024),
    String(4 * 1024 * 1024),
    "Largest request message (the transport limit; larger is RESOURCE_EXHAUSTED). AddJobs batches are at most this size.",
  ),
  maxPayloadBytes: setting("MAX_PAYLOAD_BYTES", int(1024, 16 * 1024 * 1024), String(256 * 1024), "Largest job payload, as JSON."),
  groupCommitConcurrency: setting(
    "GROUP_COMMIT_CONCURRENCY",
    int(1, 64),
    "2",
    "AddJob transactions in flight at once per replica; AddJob calls arriving meanwhile wait for the next one and share it.",
  ),
  groupCommitMaxBatch: setting("GROUP_COMMIT_MAX_BATCH", int(1, 1000), "500", "Most AddJob calls one shared transaction takes."),
  idempotencyWindowSeconds: setting(
    "IDEMPOTENCY_WINDOW_SECONDS",
    int(60, 30 * 24 * 60 * 60),
    String(24 * 60 * 60),
    "How long an idempotency key is remembered: a repeat within it returns the original job; after it the key is free again.",
  ),
  eventRetentionSeconds: setting(
    "EVENT_RETENTION_SECONDS",
    int(3600, 90 * 24 * 60 * 60),
    String(3 * 24 * 60 * 60),
    "How long job events are kept: WatchJobs can resume from a cursor this old (older is OUT_OF_RANGE), and analytics rollups read them.",
  ),
  workersEnabled: setting("WORKERS_ENABLED", bool, "true", "Run jobs in this replica (false: an API-only replica)."),
  moneyConcurrency: setting("MONEY_CONCURRENCY", int(0, 1000), "20", "Jobs of the money queue one replica runs at once."),
  communicationConcurrency: setting("COMMUNICATION_CONCURRENCY", int(0, 1000), "10", "Jobs of the communication queue one replica runs at once."),
  backgroundConcurrency: setting("BACKGROUND_CONCURRENCY", int(0, 1000), "2", "Jobs of the background queue one replica runs at once."),
  workerPollIntervalMs: setting(
    "WORKER_POLL_INTERVAL_MS",
    int(100, 60_000),
    "1000",
    "Workers wake on a notification when a job is added; they also poll this often (delayed jobs and retries send none).",
  ),
  paymentProvider: setting(
    "PAYMENT_PROVIDER",
    z.enum(["sandbox", "http"], { error: "must be sandbox or http" }),
    "sandbox",
    "Payments and refunds: `sandbox` (a ledger in PostgreSQL, test cards) or `http` (PAYMENT_GATEWAY_URL).",
  ),
  paymentGatewayUrl: setting(
    "PAYMENT_GATEWAY_URL",
    optionalUrl,
    undefined,
    "Base URL of the payment gateway (PAYMENT_PROVIDER=http); the only host payment calls go to.",
  ),
  paymentGatewayApiKey: setting("PAYMENT_GATEWAY_API_KEY", optionalString, undefined, "Sent to the payment gateway as a bearer token, when set."),
  mintProvider: setting(
    "MINT_PROVIDER",
    z.enum(["sandbox", "http"], { error: "must be sandbox or http" }),
    "sandbox",
    "NFT mints: `sandbox` or `http` (MINT_SERVICE_URL).",
  ),
  mintServiceUrl: setting("MINT_SERVICE_URL", optionalUrl, undefined, "Base URL of the mint service (MINT_PROVIDER=http)."),
  mintServiceApiKey: setting("MINT_SERVICE_API_KEY", optionalString, undefined, "Sent to the mint service as a bearer token, when set."),
  providerAllowHttp: setting(
    "PROVIDER_ALLOW_HTTP",
    bool,
    "false",
    "Development override: allow `http://` PAYMENT_GATEWAY_URL / MINT_SERVICE_URL (a local fake provider). Otherwise they must be `https://`, so API keys and payment data never travel in clear text.",
  ),
  providerTimeoutMs: setting("PROVIDER_TIMEOUT_MS", int(100, 300_000), "10000", "How long a provider call may take before it counts as a retryable failure."),
  sandboxLatencyMs: setting("SANDBOX_LATENCY_MS", int(0, 600_000), "0", "How long a sandbox provider call takes, to rehearse slow providers."),
  emailTransport: setting(
    "EMAIL_TRANSPORT",
    z.enum(["outbox", "smtp"], { error: "must be outbox or smtp" }),
    "outbox",
    "Email delivery: `outbox` (`.eml` files under DATA_DIR/outbox) or `smtp` (SMTP_URL).",
  ),
  smtpUrl: setting(
    "SMTP_URL",
    z.url({ protocol: /^smtps?$/, error: "must be an smtp:// or smtps:// URL" }).optional(),
    undefined,
    "SMTP server, e.g. `smtps://user:pass@mail.example.com:465` or `smtp://relay:587` (STARTTLS when offered).",
  ),
  smtpRequireTls: setting("SMTP_REQUIRE_TLS", bool, "false", "Refuse to send over `smtp://` unless the server offers STARTTLS."),
  smtpTlsRejectUnauthorized: setting("SMTP_TLS_REJECT_UNAUTHORIZED", bool, "true", "Verify the SMTP server's certificate."),
  smtpTimeoutMs: setting("SMTP_TIMEOUT_MS", int(1000, 300_000), "30000", "Connection, greeting and socket timeout of SMTP."),
  emailFrom: setting("EMAIL_FROM", z.string().min(3), "queue-service <no-reply@queue-service.local>", "The From address of emails."),
  emailRateLimitPerMinute: setting(
    "EMAIL_RATE_LIMIT_PER_MINUTE",
    int(0, 1_000_000),
    "100",
    "Email recipients one service principal may address per minute through `email:send`, cluster-wide (a job to 5 addresses counts 5; 0: no limit; admins are exempt), so a leaked token is no spam relay.",
  ),
  analyticsSchedule: setting(
    "ANALYTICS_SCHEDULE",
    z.string().refine((v) => v === "" || scheduleViolations({ name: "analytics-aggregate", cron: v, timeZone: "" }, "").length === 0, {
      error: "must be a cron expression (e.g. `* * * * *`) or empty",
    }),
    "* * * * *",
    "Cron (UTC) of the schedule `analytics-aggregate` (the analytics rollup job, `analytics:aggregate`), created with it when the database has none; after that ScheduleService owns it (UpdateSchedule, PauseSchedule). One run per tick across all replicas. Empty: none created.",
    true,
  ),
  maxStreams: setting("MAX_STREAMS", int(1, 1_000_000), "10000", "Open WatchJob, WatchJobs and WatchMetrics streams allowed at once on a replica."),
  maxStreamsPerPrincipal: setting("MAX_STREAMS_PER_PRINCIPAL", int(1, 1_000_000), "1000", "Open streams one principal may hold on a replica."),
  maxWaitingFetches: setting(
    "MAX_WAITING_FETCHES",
    int(1, 1_000_000),
    "10000",
    "WorkerService.FetchJobs calls that may wait for jobs at once on a replica (a long poll holds no connection to the database while it waits).",
  ),
  maxWaitingFetchesPerPrincipal: setting(
    "MAX_WAITING_FETCHES_PER_PRINCIPAL",
    int(1, 1_000_000),
    "2000",
    "Waiting FetchJobs calls one worker principal may hold on a replica; beyond it RESOURCE_EXHAUSTED. A worker that disconnects frees its place at once.",
  ),
  streamBufferBytes: setting(
    "STREAM_BUFFER_BYTES",
    int(16 * 1024, 256 * 1024 * 1024),
    String(1024 * 1024),
    "Bytes of events a stream may have waiting for a slow client before it is cut off with RESOURCE_EXHAUSTED.",
  ),
  alertEvaluationIntervalMs: setting(
    "ALERT_EVALUATION_INTERVAL_MS",
    int(200, 3_600_000),
    "15000",
    "How often alert rules are evaluated (by one replica at a time).",
  ),
  alertWebhookAllowedHosts: setting(
    "ALERT_WEBHOOK_ALLOWED_HOSTS",
    list.pipe(z.array(z.string().regex(/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/, "must be hosts like hooks.example.com or hooks.example.com:8443"))),
    "",
    "Comma-separated `host:port` (or `host` for the scheme's default port only) alert webhooks may be sent to; none by default. A listed IP address is allowed even if internal.",
  ),
  alertWebhookAllowedNetworks: setting(
    "ALERT_WEBHOOK_ALLOWED_NETWORKS",
    list.pipe(z.array(z.string().refine(isCidr, "must be CIDR ranges like 10.20.0.0/16"))),
    "",
    "Comma-separated CIDR ranges of internal addresses (loopback, private, link-local) that webhook hosts may resolve to; none by default: such addresses are refused.",
  ),
  alertWebhookTimeoutMs: setting("ALERT_WEBHOOK_TIMEOUT_MS", int(100, 60_000), "5000", "Timeout of one alert webhook POST."),
  maxHealthWatches: setting("MAX_HEALTH_WATCHES", int(0, 100_000), "100", "Open grpc.health.v1 Watch streams allowed at once."),
};

type Settings = typeof settings;

/** The parsed configuration. */
export type Config = { [K in keyof Settings]: Settings[K] extends Setting<infer T> ? T : never };

/** A configuration value that cannot be used; the message names the variable and the rule. */
export class ConfigError extends Error {
  override name = "ConfigError";
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
}

/** Reads and validates the configuration from `env` (default: `process.env`). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const config: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(settings) as [string, Setting<unknown>][]) {
    const raw = env[s.env] === "" && !s.emptyIsValue ? undefined : env[s.env];
    const value = raw ?? s.default;
    const parsed = s.schema.safeParse(value);
    if (parsed.success) {
      config[key] = parsed.data;
    } else {
      const issue = parsed.error.issues[0];
      const shown = raw === undefined ? "unset" : /TOKENS|URL|KEY|SECRET|PASSWORD/.test(s.env) ? "value hidden" : JSON.stringify(raw);
      problems.push(`${s.env}: ${issue?.message ?? "invalid"} (${shown})`);
    }
  }
  const c = config as Config;
  if (problems.length === 0) problems.push(...crossChecks(c));
  if (problems.length > 0) throw new ConfigError(problems);
  return c;
}

function crossChecks(c: Config): string[] {
  const problems: string[] = [];
  if ((c.tlsCertFile === undefined) !== (c.tlsKeyFile === undefined)) {
    problems.push("TLS_CERT_FILE and TLS_KEY_FILE: set both or neither");
  }
  if (!isLoopback(c.host) && c.tlsCertFile === undefined && !c.allowPlaintext) {
    problems.push(`HOST: ${c.host} is not a loopback address; set TLS_CERT_FILE/TLS_KEY_FILE, or ALLOW_PLAINTEXT=true behind a proxy that terminates TLS`);
  }
  if (c.nodeEnv === "production" && c.databaseUrl === undefined) {
    problems.push("DATABASE_URL: required when NODE_ENV=production (the embedded database is for development only)");
  }
  if (c.nodeEnv === "production" && c.authTokens === undefined) {
    problems.push("AUTH_TOKENS: required when NODE_ENV=production (a generated token is for development only)");
  }
  if (c.paymentProvider === "http" && !c.paymentGatewayUrl) problems.push("PAYMENT_GATEWAY_URL: required when PAYMENT_PROVIDER=http");
  if (c.emailTransport === "smtp" && !c.smtpUrl) problems.push("SMTP_URL: required when EMAIL_TRANSPORT=smtp");
  if (c.mintProvider === "http" && !c.mintServiceUrl) problems.push("MINT_SERVICE_URL: required when MINT_PROVIDER=http");
  for (const [env, url] of [
    ["PAYMENT_GATEWAY_URL", c.paymentGatewayUrl],
    ["MINT_SERVICE_URL", c.mintServiceUrl],
  ] as const) {
    if (url && new URL(url).protocol === "http:" && !c.providerAllowHttp)
      problems.push(
        `${env}: must be an https:// URL (its API key and payment data would travel in clear text); PROVIDER_ALLOW_HTTP=true allows http:// for a local fake provider`,
      );
  }
  if (c.maxPayloadBytes > c.maxMessageBytes) {
    problems.push("MAX_PAYLOAD_BYTES: must not exceed MAX_MESSAGE_BYTES");
  }
  return problems;
}

/** Whether `host` names only this machine. */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  const kind = isIP(host);
  if (kind === 4) return host.startsWith("127.");
  if (kind === 6) return host === "::1";
  return false;
}

/** The configuration table of the README, in Markdown. */
export function configurationTable(): string {
  const rows = Object.values(settings).map((s) => {
    const d = s.default === undefined ? "" : `\`${s.default}\``;
    return `| \`${s.env}\` | ${d} | ${s.doc} |`;
  });
  return ["| variable | default | meaning |", "|---|---|---|", ...rows].join("\n");
}
