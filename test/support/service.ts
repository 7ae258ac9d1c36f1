/**
 * The service started in-process on a free port, against the test file's schemas, with known tokens.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Service, startService } from "../../src/app.js";
import { type Config, loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import type { TestDatabase } from "./database.js";

/** Tokens every test service accepts. */
export const tokens = {
  admin: "test-admin-token-0123456789",
  serviceA: "test-service-a-token-0123456789",
  serviceB: "test-service-b-token-0123456789",
  workerA: "test-worker-a-token-0123456789",
  workerB: "test-worker-b-token-0123456789",
} as const;

/** AUTH_TOKENS for {@link tokens}. */
export const AUTH_TOKENS = [
  `admin:admin:${tokens.admin}`,
  `svc-a:service:${tokens.serviceA}`,
  `svc-b:service:${tokens.serviceB}`,
  `wrk-a:worker:${tokens.workerA}`,
  `wrk-b:worker:${tokens.workerB}`,
].join(",");

/** The environment a test service runs with. */
export function testEnv(db: TestDatabase, overrides: Record<string, string> = {}): Record<string, string> {
  return {
    PORT: "0",
    HOST: "127.0.0.1",
    DATABASE_URL: db.url,
    DATABASE_SCHEMA: db.schema,
    PGBOSS_SCHEMA: db.bossSchema,
    AUTH_TOKENS,
    DATA_DIR: mkdtempSync(join(tmpdir(), "queue-service-data-")),
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    SHUTDOWN_GRACE_MS: "3000",
    DATABASE_POOL_MAX: "4",
    // Jobs stay where a test puts them unless the test runs workers; no cron job appears on its own.
    WORKERS_ENABLED: "false",
    ANALYTICS_SCHEDULE: "",
    PGBOSS_POOL_MAX: "4",
    ...overrides,
  };
}

/** A service running in this process. */
export interface TestService {
  readonly service: Service;
  readonly config: Config;
  readonly baseUrl: string;
  stop(): Promise<void>;
}

/** Starts the service in-process and waits until it is ready. */
export async function startTestService(db: TestDatabase, overrides: Record<string, string> = {}): Promise<TestService> {
  const config = loadConfig(testEnv(db, overrides));
  const service = await startService(config, createLogger(config.logLevel));
  try {
    await service.ready;
  } catch (err) {
    await service.stop();
    throw err;
  }
  return { service, config, baseUrl: `http://127.0.0.1:${service.port}`, stop: () => service.stop() };
}
