/**
 * The service as a real process (`node dist/src/main.js` with `npm start`'s node flags), for start,
 * signal and crash tests.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TestDatabase } from "./database.js";
import { freePort } from "./ports.js";
import { startFlags } from "./start-flags.js";

export { freePort };

import { testEnv } from "./service.js";

const mainJs = fileURLToPath(new URL("../../dist/src/main.js", import.meta.url));

/** A running service process. */
export interface ServiceProcess {
  readonly child: ChildProcess;
  readonly port: number;
  readonly baseUrl: string;
  /** Everything it wrote so far. */
  output(): string;
  /** Sends `signal` and resolves with the exit code (and how long the exit took). */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; ms: number }>;
  /** Resolves when the process exits. */
  exited: Promise<number | null>;
}

/** Spawns the service with `env` (PORT must be fixed: the test needs to know it). */
export function spawnService(env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, [...startFlags, mainJs], {
    // Processes always log (to the buffer below), so a failing test can show what happened.
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env, LOG_LEVEL: env.LOG_LEVEL === "silent" ? "info" : (env.LOG_LEVEL ?? "info") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d.toString()));
  child.stderr!.on("data", (d) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  const port = Number(env.PORT);
  return {
    child,
    port,
    baseUrl: `http://127.0.0.1:${port}`,
    output: () => out,
    exited,
    async stop(signal = "SIGTERM") {
      const started = Date.now();
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      return { code, ms: Date.now() - started };
    },
  };
}

/** Polls `url` until `accept(status)` or the deadline. */
export async function waitForHttp(url: string, accept: (status: number) => boolean, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    try {
      last = (await fetch(url, { signal: AbortSignal.timeout(1000) })).status;
      if (accept(last)) return last;
    } catch {
      last = 0;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer as expected within ${timeoutMs} ms (last status ${last})`);
}

/**
 * A replica of the service on `db`: spawned with testEnv plus `env` (on a free port unless env.PORT
 * says which), added to `processes` (the file's afterAll stops them), and ready. One that does not
 * become ready fails with its output.
 */
export async function startReplica(
  db: TestDatabase,
  processes: ServiceProcess[],
  env: Record<string, string> = {},
  readyTimeoutMs = 30_000,
): Promise<ServiceProcess> {
  const p = spawnService(testEnv(db, { PORT: String(await freePort()), ...env }));
  processes.push(p);
  await waitForHttp(`${p.baseUrl}/readyz`, (s) => s === 200, readyTimeoutMs).catch((err: Error) => {
    throw new Error(`${err.message}\n${p.output()}`);
  });
  return p;
}
