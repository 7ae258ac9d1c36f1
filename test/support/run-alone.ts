/**
 * Test files that run several service processes at full speed, or hold timing bounds (lease rescue,
 * timeouts under a soak), call runAlone() first: they take one PostgreSQL advisory lock for the whole
 * file, so no two of them run at once on the two test workers (each still runs beside light files).
 * Two of them together starve each other on a 2-core machine, and their time bounds stop meaning
 * anything. The lock is the database's (per database, so concurrent CI runs on other databases do
 * not wait) and goes with the connection, whatever happens to the test process.
 */
import pg from "pg";
import { afterAll, beforeAll, inject } from "vitest";

/** Longest a file waits for the others to finish. */
const WAIT_MS = 20 * 60_000;

export function runAlone(): void {
  let client: pg.Client | undefined;
  beforeAll(async () => {
    client = new pg.Client({ connectionString: inject("databaseUrl") });
    await client.connect();
    await client.query("SET lock_timeout = 0");
    await client.query("SELECT pg_advisory_lock(hashtextextended('queue-service-tests:run-alone', 0))");
  }, WAIT_MS);
  // Registered before the file's own hooks, so it runs after them: the lock is held until the file
  // has stopped its processes.
  afterAll(async () => {
    await client?.end();
  });
}
