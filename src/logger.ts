/**
 * JSON logs through pino. Secrets and personal data are redacted by path: authorization headers,
 * tokens, payloads, card tokens and email addresses never reach a log line. Errors (the `err` key)
 * are logged without what they quote: a database error's DETAIL, WHERE and query are dropped and
 * quoted values and email addresses in any error message are masked, since PostgreSQL quotes the
 * offending input (a payload's text, say) in those.
 */
import { type Logger, pino } from "pino";

export type { Logger } from "pino";

const sensitiveKeys = ["authorization", "token", "payload", "paymentMethod", "to", "replyTo", "email", "password", "data"];

/** Paths pino redacts: each sensitive key at the top level and up to three levels down. */
export const redactPaths = sensitiveKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

const quoted = /"(?:[^"\\]|\\.)*"/g;
const emailAddress = /[^\s<>"'(),;:]+@[^\s<>"'(),;:]+\.[^\s<>"'(),;:]+/g;

/** A message without the values it quotes: `"..."` becomes `"…"`, email addresses `[email]`. */
export function maskQuoted(text: string): string {
  return text.replace(quoted, '"…"').replace(emailAddress, "[email]");
}

/** What an error shows in a log line: its kind, masked message and stack, and a database error's
 *  SQLSTATE and the names (never the values) it concerns. */
export function loggableError(err: unknown): unknown {
  if (typeof err === "string") return maskQuoted(err);
  if (!err || typeof err !== "object") return err;
  const e = err as Error & { code?: unknown; severity?: unknown; routine?: unknown; table?: unknown; column?: unknown; constraint?: unknown; cause?: unknown };
  const out: Record<string, unknown> = { type: e.name ?? e.constructor?.name, message: maskQuoted(String(e.message ?? "")) };
  for (const k of ["code", "severity", "routine", "table", "column", "constraint"] as const) if (typeof e[k] === "string") out[k] = e[k];
  if (typeof e.stack === "string") out.stack = maskQuoted(e.stack);
  if (e.cause !== undefined) out.cause = loggableError(e.cause);
  return out;
}

/**
 * Creates the service's root logger: JSON lines on stdout, or with `pretty` readable lines (pino's
 * pretty transport, for a developer's terminal). Redaction and error masking apply to both.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, options: { pretty?: boolean } = {}): Logger {
  const config: pino.LoggerOptions = {
    level,
    base: { service: "queue-service" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths, censor: "[redacted]" },
    serializers: { err: loggableError },
  };
  if (options.pretty && !destination) {
    return pino({
      ...config,
      transport: {
        target: "pino-pretty",
        options: { colorize: process.stdout.isTTY === true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service" },
      },
    });
  }
  return pino({ ...config, formatters: { level: (label) => ({ level: label }) } }, destination);
}
