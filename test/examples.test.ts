/**
 * The examples run with one command against a running service: the producer's payment completes (and
 * a declined card is reported as such), the watcher prints the job's changes and the queue's
 * numbers, and the worker registers a job type of its own and runs its jobs to COMPLETED.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testDatabase } from "./support/database.js";
import { startTestService, type TestService, tokens } from "./support/service.js";
import { eventually } from "./support/wait.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const db = testDatabase();
let svc: TestService;
beforeAll(async () => {
  svc = await startTestService(db, { WORKERS_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "200" });
});
afterAll(async () => {
  await svc?.stop();
  await db.drop();
});

/** Starts `tsx examples/<name>` (what `npx tsx` runs) against the test service. */
function example(name: string, args: string[] = []) {
  const child = spawn(join(root, "node_modules/.bin/tsx"), [`examples/${name}`, ...args], {
    cwd: root,
    env: { ...process.env, QUEUE_SERVICE_URL: svc.baseUrl, QUEUE_SERVICE_TOKEN: tokens.admin },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { child, output: () => out, exited };
}

describe("examples", () => {
  it("producer.ts adds a payment and waits for it", async () => {
    const ok = example("producer.ts");
    expect(await ok.exited).toBe(0);
    expect(ok.output()).toMatch(/^added payment:process [0-9a-f-]{36} \(CREATED\)$/m);
    expect(ok.output()).toMatch(/^COMPLETED after 0 retries/m);

    const declined = example("producer.ts", ["tok_decline"]);
    expect(await declined.exited).toBe(1);
    expect(declined.output()).toMatch(/^FAILED after 0 retries: CARD_DECLINED: /m);
  }, 60_000);

  it("watcher.ts prints job changes and queue metrics until stopped", async () => {
    const w = example("watcher.ts", ["money"]);
    const printed = (line: RegExp, what: string) =>
      eventually(async () => line.test(w.output()), what, 20_000).catch((err: Error) => {
        throw new Error(`${err.message}; the watcher printed:\n${w.output()}`);
      });
    try {
      await eventually(async () => w.output().includes("watching money"), "the watcher to start", 30_000);
      await new Promise((r) => setTimeout(r, 1000));
      const producer = example("producer.ts");
      expect(await producer.exited).toBe(0);
      const id = /added payment:process ([0-9a-f-]{36})/.exec(producer.output())![1]!;
      await printed(new RegExp(`COMPLETED\\s+payment:process\\s+${id}`), "the completion");
      await printed(/\[money\] depth \d+ {2}active \d+/, "a metrics line");
    } finally {
      w.child.kill("SIGINT");
    }
    expect(await w.exited).toBe(0);
  }, 90_000);

  it("worker.ts registers a job type of its own and renders its jobs with progress", async () => {
    const w = example("worker.ts", ["--once"]);
    const code = await w.exited;
    expect(code, w.output()).toBe(0);
    const done = w.output().match(/^[0-9a-f-]{36}: COMPLETED \{"url":"https:\/\/files\.example\/inv_\d+_\d\.pdf","pages":2\} \(progress 100%\)$/gm) ?? [];
    expect(done, w.output()).toHaveLength(3);
    // Run again: the type exists already, and the new jobs run as well.
    const again = example("worker.ts", ["--once"]);
    expect(await again.exited, again.output()).toBe(0);
  }, 90_000);
});
