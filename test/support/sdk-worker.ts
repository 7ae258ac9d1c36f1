/**
 * A worker process built on the TypeScript SDK, for tests: QS_URL, QS_TOKEN, QS_TYPES (comma
 * separated), QS_MODE (`complete`: finish each job at once with {by: QS_NAME}; `slow`: the same after
 * QS_SLOW_MS; `hang`: hold every job until killed), QS_CONCURRENCY. Prints `STARTED <id>` and
 * `DONE <id>` lines.
 */
import { createWorker } from "@queue-service/client";

const mode = process.env.QS_MODE ?? "complete";
const worker = createWorker({
  baseUrl: process.env.QS_URL!,
  token: process.env.QS_TOKEN!,
  types: process.env.QS_TYPES!.split(","),
  concurrency: Number(process.env.QS_CONCURRENCY ?? 10),
  pollWaitMs: 5000,
  // On stderr, so that a test's output shows why a worker stalled.
  onError: (err, context) => process.stderr.write(`WORKER ERROR ${context}: ${(err as Error).message}\n`),
  handler: async (job) => {
    process.stdout.write(`STARTED ${job.id}\n`);
    if (mode === "hang") await new Promise(() => {});
    if (mode === "slow") await new Promise((r) => setTimeout(r, Number(process.env.QS_SLOW_MS ?? 300)));
    process.stdout.write(`DONE ${job.id}\n`);
    return { by: process.env.QS_NAME ?? "worker" };
  },
});
process.stdout.write("READY\n");
process.once("beforeExit", () => void worker.stop());
