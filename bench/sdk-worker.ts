/**
 * The bench's external worker: the TypeScript SDK in a process of its own, with a no-op handler.
 * BENCH_URL, BENCH_TOKEN, BENCH_TYPE, BENCH_CONCURRENCY; with BENCH_REPORT_STARTS=1 it prints
 * `START <job id> <epoch ms>` as each handler starts.
 */
import { createWorker } from "@queue-service/client";

const report = process.env.BENCH_REPORT_STARTS === "1";
createWorker({
  baseUrl: process.env.BENCH_URL!,
  token: process.env.BENCH_TOKEN!,
  types: [process.env.BENCH_TYPE!],
  concurrency: Number(process.env.BENCH_CONCURRENCY ?? 100),
  onError: (err, context) => process.stderr.write(`worker: ${context}: ${String(err)}\n`),
  handler: async (job) => {
    if (report) process.stdout.write(`START ${job.id} ${Date.now()}\n`);
  },
});
process.stdout.write("READY\n");
