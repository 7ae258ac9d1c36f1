/**
 * A worker for a job type of your own, in your own process: registers `invoice:render` (queue
 * `billing`) if it is not there yet, adds a few invoices, and renders them with progress, until
 * Ctrl-C (or, with --once, until those are done).
 *
 *   npx tsx examples/worker.ts [--once]      (against `npm start`)
 *
 * With `npm start`'s admin token it registers the type and adds the jobs itself. A real worker runs
 * with a token of role `worker` named in the type's `workers` list, and producers add the jobs.
 */
import { Code, ConnectError, createQueueClient, createWorker, JobState, PermanentJobError } from "@queue-service/client";
import { baseUrl, token } from "./connection.js";

interface Invoice {
  invoiceId: string;
  amount: number;
  lines?: string[];
}

const once = process.argv.includes("--once");
const client = createQueueClient({ baseUrl, token: token() });

// 1. The queue and the job type (idempotent: ALREADY_EXISTS means someone did it already).
const exists = (err: unknown) => {
  if (ConnectError.from(err).code !== Code.AlreadyExists) throw err;
};
await client.queues.createQueue({ queue: { name: "billing", description: "Invoices" } }).catch(exists);
await client
  .registerJobType({
    name: "invoice:render",
    queue: "billing",
    description: "Renders an invoice as a PDF",
    payloadSchema: {
      type: "object",
      properties: { invoiceId: { type: "string", minLength: 1 }, amount: { type: "integer", minimum: 1 }, lines: { type: "array", items: { type: "string" } } },
      required: ["invoiceId", "amount"],
      additionalProperties: false,
    },
  })
  .catch(exists);

// 2. A few jobs, typed by the payload above.
const invoices = client.jobType<Invoice>("invoice:render");
const added = await Promise.all([1, 2, 3].map((n) => invoices.add({ invoiceId: `inv_${Date.now()}_${n}`, amount: 1000 * n, lines: ["consulting", "travel"] })));
console.log(`added ${added.map((a) => a.job.id).join(", ")}`);

// 3. The worker: fetches, heartbeats, reports progress, completes.
let left = added.length;
const worker = createWorker<Invoice>({
  baseUrl,
  token: token(),
  types: ["invoice:render"],
  concurrency: 2,
  handler: async (job) => {
    if (job.payload.amount <= 0) throw new PermanentJobError("nothing to bill", "EMPTY_INVOICE");
    for (const [i, line] of (job.payload.lines ?? []).entries()) {
      job.signal.throwIfAborted(); // a cancel or a lost lease stops the work here
      await job.progress(Math.round(((i + 1) / (job.payload.lines?.length ?? 1)) * 100), `rendered ${line}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { url: `https://files.example/${job.payload.invoiceId}.pdf`, pages: job.payload.lines?.length ?? 1 };
  },
});

for (const { job } of added) {
  const done = await client.waitForJob(job.id, { timeoutMs: 60_000 });
  console.log(`${done.id}: ${JobState[done.state]} ${JSON.stringify(done.result ?? {})} (progress ${done.progress?.percent ?? 0}%)`);
  left--;
}
if (once && left === 0) {
  await worker.stop();
  client.close();
}
