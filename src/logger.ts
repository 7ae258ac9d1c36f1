/**
 * JSON logs through pino. Secrets and personal data are redacted by path: authorization headers,
 * tokens, payloads, card tokens and email addresses never reach a log line.
 */
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

const sensitiveKeys = ["authorization", "token", "payload", "paymentMethod", "to", "replyTo", "email", "password", "data"];

/** Paths pino redacts: each sensitive key at the top level and up to three levels down. */
export const redactPaths = sensitiveKeys.flatMap((k) => [k, `*.${k}`, `*.*.${k}`, `*.*.*.${k}`]);

/** Creates the service's root logger. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "queue-service" },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: "[redacted]" },
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
