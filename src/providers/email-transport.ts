/**
 * Email delivery through nodemailer: `smtp` (SMTP_URL) for production, `outbox` (default) writing
 * each message as an `.eml` file under DATA_DIR/outbox for development. SMTP replies decide whether a
 * failure is worth retrying: 5xx is permanent (dead letter), 4xx and connection errors are retried.
 *
 * Email is at least once: SMTP has no idempotency, so a crash between the server's acceptance and the
 * job's completion sends the message again. The Message-ID is derived from the job line, so a receiver
 * that deduplicates by Message-ID shows it once.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import nodemailer, { type SendMailOptions } from "nodemailer";
import { PermanentJobError, RetryableJobError } from "../engine/processor.js";

/** One email to send. */
export interface EmailMessage {
  to: string[];
  subject: string;
  text?: string;
  html?: string;
  replyTo?: string;
  /** The job line: the Message-ID and the outbox file are derived from it. */
  rootJobId: string;
  jobId: string;
}

/** Sends emails. */
export interface EmailTransport {
  readonly name: string;
  send(message: EmailMessage): Promise<Record<string, unknown>>;
  close(): void;
}

export interface SmtpOptions {
  url: string;
  from: string;
  timeoutMs: number;
  rejectUnauthorized: boolean;
  requireTls: boolean;
}

const messageIdOf = (m: EmailMessage, from: string) => `<${m.rootJobId}@${(/@([^>\s]+)/.exec(from)?.[1] ?? "queue-service.local").toLowerCase()}>`;

function mailOptions(m: EmailMessage, from: string): SendMailOptions {
  return {
    from,
    to: m.to,
    subject: m.subject,
    text: m.text,
    html: m.html,
    replyTo: m.replyTo,
    messageId: messageIdOf(m, from),
    headers: { "X-Queue-Service-Job": m.jobId },
  };
}

const connectionCodes = new Set(["ECONNECTION", "ETIMEDOUT", "ESOCKET", "EDNS", "ECONNREFUSED", "ECONNRESET", "ETLS", "EPROTOCOL"]);

/** Classifies a nodemailer failure. */
export function classifySmtpError(err: unknown): Error {
  const e = err as { responseCode?: number; code?: string; response?: string; message?: string };
  const detail = (e.response ?? e.message ?? String(err)).slice(0, 500);
  if (typeof e.responseCode === "number" && e.responseCode >= 500)
    return new PermanentJobError(`SMTP server rejected the message: ${detail}`, "SMTP_REJECTED", { responseCode: e.responseCode });
  if (typeof e.responseCode === "number" && e.responseCode >= 400) return new RetryableJobError(`SMTP server deferred the message: ${detail}`, "SMTP_DEFERRED");
  if (e.code && connectionCodes.has(e.code)) return new RetryableJobError(`SMTP server unreachable: ${detail}`, "SMTP_UNREACHABLE");
  return new RetryableJobError(`sending failed: ${detail}`, "SMTP_ERROR");
}

/** Delivery through an SMTP server. */
export function smtpTransport(options: SmtpOptions): EmailTransport {
  const transport = nodemailer.createTransport(options.url, {
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
    requireTLS: options.requireTls,
    tls: { rejectUnauthorized: options.rejectUnauthorized },
  } as never);
  return {
    name: "smtp",
    async send(m) {
      try {
        const info = await transport.sendMail(mailOptions(m, options.from));
        if (info.accepted.length === 0) throw new PermanentJobError(`SMTP server accepted no recipient (${info.rejected.length} rejected)`, "SMTP_REJECTED");
        return {
          messageId: info.messageId,
          accepted: info.accepted.map(String),
          rejected: info.rejected.map(String),
          response: info.response,
          transport: "smtp",
        };
      } catch (err) {
        if (err instanceof PermanentJobError) throw err;
        throw classifySmtpError(err);
      }
    },
    close: () => transport.close(),
  };
}

/** Delivery into `.eml` files (development): one file per job line, written atomically. */
export function outboxTransport(dir: string, from: string): EmailTransport {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: "unix" });
  return {
    name: "outbox",
    async send(m) {
      const info = await transport.sendMail(mailOptions(m, from));
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `${m.rootJobId}.eml`);
      writeFileSync(`${file}.tmp`, info.message as Buffer);
      renameSync(`${file}.tmp`, file);
      return { messageId: info.messageId, accepted: m.to, rejected: [], file, transport: "outbox" };
    },
    close: () => transport.close(),
  };
}
