/**
 * Migrations apply once, in order, when several replicas start together, and a failing migration
 * leaves nothing behind.
 */
import { afterAll, describe, expect, it } from "vitest";
import { type Migration, migrate } from "../src/db/migrate.js";
import { createLogger } from "../src/logger.js";
import { testDatabase } from "./support/database.js";

const db = testDatabase();
const logger = createLogger("silent");
afterAll(() => db.drop());

const migrations: Migration[] = [
  { version: 1, name: "0001_a", sql: "CREATE TABLE {{schema}}.a (id int); INSERT INTO {{schema}}.a VALUES (1);" },
  { version: 2, name: "0002_b", sql: "SELECT pg_sleep(0.2); INSERT INTO {{schema}}.a VALUES (2);" },
];

describe("migrations", () => {
  it("apply once when replicas start together", async () => {
    const results = await Promise.all(
      Array.from({ length: 4 }, () => migrate({ url: db.url, schema: db.schema, bossSchema: db.bossSchema, logger, migrations })),
    );
    expect(results.flat().sort()).toEqual([1, 2]);
    const { rows } = await db.query(`SELECT id FROM "${db.schema}".a ORDER BY id`);
    expect(rows).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it("roll a failing migration back entirely", async () => {
    const failing: Migration = { version: 3, name: "0003_bad", sql: "INSERT INTO {{schema}}.a VALUES (3); SELECT no_such_function();" };
    await expect(migrate({ url: db.url, schema: db.schema, bossSchema: db.bossSchema, logger, migrations: [...migrations, failing] })).rejects.toThrow(
      /0003_bad/,
    );
    const { rows } = await db.query(`SELECT id FROM "${db.schema}".a ORDER BY id`);
    expect(rows).toEqual([{ id: 1 }, { id: 2 }]);
    const recorded = await db.query(`SELECT version FROM "${db.schema}".schema_migration ORDER BY version`);
    expect(recorded.rows).toEqual([{ version: 1 }, { version: 2 }]);
  });
});
