/**
 * The service's registry (queues and job types) and the processors that run them.
 */

import { join } from "node:path";
import type { Config } from "../config.js";
import type { Pool, Queryable } from "../db/pool.js";
import type { Analytics } from "../engine/analytics.js";
import type { Processor } from "../engine/processor.js";
import { createRegistry, type JobRegistry } from "../engine/registry.js";
import { type EmailTransport, outboxTransport, smtpTransport } from "../providers/email-transport.js";
import { httpMintProvider, httpPaymentProvider } from "../providers/http-provider.js";
import type { MintProvider, PaymentProvider } from "../providers/money-providers.js";
import { sandboxProvider } from "../providers/sandbox-ledger.js";
import { analyticsAggregate, analyticsProcessor } from "./background/analytics-aggregate.js";
import { emailProcessor, emailSend } from "./communication/email-send.js";
import { moneyOperationQueries } from "./money/money-operation-queries.js";
import { createMoneyOperations } from "./money/money-operations.js";
import { nftMint, nftMintProcessor } from "./money/nft-mint.js";
import { paymentProcess, paymentProcessor } from "./money/payment-process.js";
import { refundProcess, refundProcessor } from "./money/refund-process.js";
import { queues } from "./queues.js";

/** Every job type of the service. */
export const jobTypes = [paymentProcess, refundProcess, nftMint, emailSend, analyticsAggregate] as const;

/**
 * Builds the service's registry. `concurrency` overrides queues' per-replica concurrency (the
 * MONEY_CONCURRENCY, ... settings); every reader takes it from the queue's policy.
 */
export function serviceRegistry(concurrency: Partial<Record<string, number>> = {}): JobRegistry {
  return createRegistry(
    queues.map((q) => ({ ...q, builtIn: true, policy: concurrency[q.name] === undefined ? q.policy : { ...q.policy, concurrency: concurrency[q.name]! } })),
    jobTypes.map((t) => ({ ...t, builtIn: true })),
  );
}

/** The queues' concurrency settings. */
export function concurrencySettings(config: Config): Record<string, number> {
  return { money: config.moneyConcurrency, communication: config.communicationConcurrency, background: config.backgroundConcurrency };
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
  const payments: PaymentProvider =
    config.paymentProvider === "http"
      ? httpPaymentProvider({ baseUrl: config.paymentGatewayUrl!, timeoutMs: config.providerTimeoutMs, apiKey: config.paymentGatewayApiKey })
      : sandbox;
  const mints: MintProvider =
    config.mintProvider === "http"
      ? httpMintProvider({ baseUrl: config.mintServiceUrl!, timeoutMs: config.providerTimeoutMs, apiKey: config.mintServiceApiKey })
      : sandbox;
  const email: EmailTransport =
    config.emailTransport === "smtp"
      ? smtpTransport({
          url: config.smtpUrl!,
          from: config.emailFrom,
          timeoutMs: config.smtpTimeoutMs,
          rejectUnauthorized: config.smtpTlsRejectUnauthorized,
          requireTls: config.smtpRequireTls,
        })
      : outboxTransport(join(config.dataDir, "outbox"), config.emailFrom);
  const processors: Processor<any>[] = [
    paymentProcessor(payments, operations),
    refundProcessor(payments, operations),
    nftMintProcessor(mints, operations),
    emailProcessor(email),
    analyticsProcessor(analytics),
  ];
  return { byType: new Map(processors.map((p) => [p.definition.type, p])), close: () => email.close() };
}
