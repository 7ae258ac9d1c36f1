/**
 * The embedded PostgreSQL starts from the npm binaries, keeps its data across restarts, recovers
 * from a killed postmaster and from one left running by a killed service, and stops cleanly.
 */
import { chmodSync, existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { removeDataDir, startEmbeddedPostgres } from "../src/db/embedded-postgres.js";

const root = mkdtempSync(join(tmpdir(), "qs-embedded-"));
chmodSync(root, 0o755);
const dataDir = join(root, "pg");

afterAll(() => removeDataDir(root));

async function query(url: string, text: string): Promise<pg.QueryResult> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end();
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("embedded PostgreSQL", () => {
  it("initialises, serves and stops", async () => {
    const pgServer = await startEmbeddedPostgres({ dataDir });
    try {
      await query(pgServer.url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)");
      expect(existsSync(join(dataDir, "PG_VERSION"))).toBe(true);
    } finally {
      await pgServer.stop();
    }
    expect(alive(pgServer.pid)).toBe(false);
  });

  it("keeps its data across a restart after being killed", async () => {
    const first = await startEmbeddedPostgres({ dataDir });
    process.kill(first.pid, "SIGKILL");
    while (alive(first.pid)) await new Promise((r) => setTimeout(r, 20));
    const second = await startEmbeddedPostgres({ dataDir });
    try {
      expect((await query(second.url, "SELECT v FROM kept")).rows).toEqual([{ v: 42 }]);
    } finally {
      await second.stop();
    }
  });

  it("replaces a postmaster left running by a killed service", async () => {
    const orphan = await startEmbeddedPostgres({ dataDir });
    // The service was killed: nobody calls orphan.stop(). The next start must take over the data directory.
    const next = await startEmbeddedPostgres({ dataDir });
    try {
      expect(alive(orphan.pid)).toBe(false);
      expect((await query(next.url, "SELECT v FROM kept")).rows).toEqual([{ v: 42 }]);
    } finally {
      await next.stop();
    }
    expect(alive(next.pid)).toBe(false);
  });
});
