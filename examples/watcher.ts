/**
 * A terminal watcher: every job change as it happens (WatchJobs) and each queue's numbers every two
 * seconds (WatchMetrics), through restarts of the service, until Ctrl-C.
 *
 *   npx tsx examples/watcher.ts [queue]      (against `npm start`)
 */
import { createQueueClient, JobEventType, JobState, type LatencySummary } from "@queue-service/client";
import { baseUrl, token } from "./connection.js";

const queue = process.argv[2] ?? "";
const client = createQueueClient({ baseUrl, token: token() });
const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
process.once("SIGTERM", () => stop.abort());

const time = () => new Date().toISOString().slice(11, 23);
const p99 = (s?: LatencySummary) => (s?.count && s.p99 ? `${(Number(s.p99.seconds) * 1000 + s.p99.nanos / 1e6).toFixed(0)}ms` : "-");

async function jobs() {
  for await (const e of client.watchJobs({ queue }, { signal: stop.signal })) {
    const job = e.job!;
    console.log(
      `${time()}  ${JobEventType[e.type].padEnd(16)} ${job.type.padEnd(20)} ${job.id}  ${JobState[job.state]}${job.lastError ? `  ${job.lastError.message}` : ""}`,
    );
  }
}

async function metrics() {
  for await (const s of client.watchMetrics({ queue, intervalMs: 2000 }, { signal: stop.signal })) {
    for (const q of s.queues) {
      console.log(
        `${time()}  [${q.queue}${q.paused ? " paused" : ""}] depth ${q.depth}  active ${q.active}  completed/min ${q.completed}  failed/min ${q.failed}  wait p99 ${p99(q.enqueueToStart)}  run p99 ${p99(q.runTime)}`,
      );
    }
  }
}

console.log(`watching ${queue || "every queue"} on ${baseUrl} (Ctrl-C to stop)`);
await Promise.all([jobs(), metrics()]);
client.close();
