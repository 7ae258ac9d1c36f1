/**
 * A plain pg-boss client on a test file's schema, to move jobs through states the way workers and
 * the supervisor do (fetch, complete, fail, expire) without running the service's workers.
 */
import { PgBoss } from "pg-boss";
import type { TestDatabase } from "./database.js";

/** Starts a pg-boss client that neither migrates nor supervises (the service under test does). */
export async function testBoss(db: TestDatabase): Promise<PgBoss> {
  const boss = new PgBoss({
    connectionString: db.url,
    schema: db.bossSchema,
    max: 3,
    supervise: false,
    migrate: false,
    schedule: false,
    registerInstance: false,
  });
  boss.on("error", () => {});
  await boss.start();
  return boss;
}
