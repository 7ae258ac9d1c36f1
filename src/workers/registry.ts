/**
 * The service's registry (queues and job types) and the processors that run them.
 */
import type { Config } from "../config.js";
import type { Pool, Queryable } from "../db/pool.js";
import { createRegistry, type JobRegistry } from "../engine/registry.js";
import { httpMintProvider, httpPaymentProvider } from "../providers/http-provider.js";
import type { MintProvider, PaymentProvider } from "../providers/money-providers.js";
import { sandboxProvider } from "../providers/sandbox-ledger.js";
import type { Analytics } from "../engine/analytics.js";
import { analyticsAggregate, analyticsProcessor } from "./background/analytics-aggregate.js";
import { join } from "node:path";
import { outboxTransport, smtpTransport, type EmailTransport } from "../providers/email-transport.js";
import { emailProcessor, emailSend } from "./communication/email-send.js";
import { nftMint, nftMintProcessor } from "./money/nft-mint.js";
import { paymentProcess, paymentProcessor } from "./money/payment-process.js";
import { refundProcess, refundProcessor } from "./money/refund-process.js";
import { createMoneyOperations } from "./money/money-operations.js";
import { moneyOperationQueries } from "./money/money-operation-queries.js";
import type { Processor } from "./processor.js";
import { queues } from "./queues.js";

/** Every job type of the service. */
export const jobTypes = [paymentProcess, refundProcess, nftMint, emailSend, analyticsAggregate] as const;

/** Builds the service's registry. */
export function serviceRegistry(): JobRegistry {
  return createRegistry(queues, jobTypes);
}

export interface ProcessorDeps {
  config: Config;
  pool: Pool;
  schema: string;
  analytics: Analytics;
  /** Whether an attempt of a job is still running somewhere (money operations wait for it). */
  attemptRunning(db: Queryable, jobId: string, retryCount: number): Promise<boolean>;
}

/** The processors of every job type, with the providers the configuration chooses, and how to release them. */
export interface Processors {
  readonly byType: Map<string, Processor<any>>;
  close(): void;
}

/** The processors of every job type, with the providers the configuration chooses. */
export function createProcessors({ config, pool, schema, analytics, attemptRunning }: ProcessorDeps): Processors {
  const sandbox = sandboxProvider(pool, schema, config.sandboxLatencyMs);
  const operations = createMoneyOperations({ pool, queries: moneyOperationQueries(schema), attemptRunning });
  const payments: PaymentProvider = config.paymentProvider === "http"
    ? httpPaymentProvider({ baseUrl: config.paymentGatewayUrl!, timeoutMs: config.providerTimeoutMs, apiKey: config.paymentGatewayApiKey })
    : sandbox;
  const mints: MintProvider = config.mintProvider === "http"
    ? httpMintProvider({ baseUrl: config.mintServiceUrl!, timeoutMs: config.providerTimeoutMs, apiKey: config.mintServiceApiKey })
    : sandbox;
  const email: EmailTransport = config.emailTransport === "smtp"
    ? smtpTransport({ url: config.smtpUrl!, from: config.emailFrom, timeoutMs: config.smtpTimeoutMs, rejectUnauthorized: config.smtpTlsRejectUnauthorized, requireTls: config.smtpRequireTls })
    : outboxTransport(join(config.dataDir, "outbox"), config.emailFrom);
  const processors: Processor<any>[] = [
    paymentProcessor(payments, operations), refundProcessor(payments, operations), nftMintProcessor(mints, operations), emailProcessor(email), analyticsProcessor(analytics),
  ];
  return { byType: new Map(processors.map((p) => [p.definition.type, p])), close: () => email.close() };
}

/** The configured concurrency of each queue. */
export function concurrencyOf(config: Config): (queue: string) => number {
  const byQueue: Record<string, number> = { money: config.moneyConcurrency, communication: config.communicationConcurrency, background: config.backgroundConcurrency };
  return (queue) => byQueue[queue] ?? 1;
}
