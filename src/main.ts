/**
 * Process entry: configuration, logging, the service, and signals. SIGTERM or SIGINT stops it
 * gracefully and exits 0; a second signal exits at once.
 */
import { type Config, ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
import { TokenConfigError } from "./server/tokens.js";
import { startTracing } from "./telemetry/tracing.js";

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`queue-service: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const pretty = config.logFormat === "pretty" || (config.logFormat === "auto" && process.stdout.isTTY === true && config.nodeEnv !== "production");
  const logger = createLogger(config.logLevel, undefined, { pretty });
  // Tracing first: its instrumentations must hook `pg` before the service loads it.
  const tracing = await startTracing();
  if (tracing.exporting) logger.info("exporting traces over OTLP");
  const { startService } = await import("./app.js");
  let service: Awaited<ReturnType<typeof startService>>;
  try {
    service = await startService(config, logger);
  } catch (err) {
    if (err instanceof TokenConfigError) {
      process.stderr.write(`queue-service: ${err.message}\n`);
      process.exit(2);
    }
    logger.fatal({ err: (err as Error).message }, "could not start");
    process.exit(1);
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    logger.info({ signal }, "signal received");
    service.stop().then(
      async () => {
        await tracing.shutdown().catch(() => {});
        process.exit(0);
      },
      (err: Error) => {
        logger.error({ err: err.message }, "stop failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  try {
    await service.ready;
  } catch {
    await service.stop().catch(() => {});
    process.exit(1);
  }
}

void main();
