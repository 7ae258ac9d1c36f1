/**
 * A producer: adds a payment and waits for its outcome.
 *
 *   npx tsx examples/producer.ts [paymentMethod]      (against `npm start`; try tok_decline)
 */
import { createQueueClient, fieldViolations, JobState } from "@queue-service/client";
import { baseUrl, token } from "./connection.js";

const client = createQueueClient({ baseUrl, token: token() });
const orderId = `ord_${Date.now()}`;

try {
  const { job } = await client.addPayment(
    { paymentId: `pay_${orderId}`, orderId, customerId: "cus_example", amount: 1299, currency: "USD", paymentMethod: process.argv[2] ?? "tok_visa" },
    { idempotencyKey: `${orderId}-charge` }, // one charge per order, however often this line runs
  );
  console.log(`added ${job.type} ${job.id} (${JobState[job.state]})`);
  const done = await client.waitForJob(job.id, { timeoutMs: 60_000 });
  const outcome = done.lastError ? `${done.lastError.reason || "error"}: ${done.lastError.message}` : JSON.stringify(done.result ?? {});
  console.log(`${JobState[done.state]} after ${done.retryCount} retries: ${outcome}`);
  process.exitCode = done.state === JobState.COMPLETED ? 0 : 1;
} catch (err) {
  const violations = fieldViolations(err);
  console.error(String(err), ...violations.map((v) => `\n  ${v.field}: ${v.description}`));
  process.exitCode = 2;
} finally {
  client.close();
}
