/**
 * Secrets shared by every replica, generated once by whichever replica asks first and kept in the
 * service's schema (so page tokens signed by one replica verify on another).
 */
import { randomBytes } from "node:crypto";
import type { Queryable } from "../db/pool.js";
import { qualified } from "../db/sql.js";

/** Returns the secret named `name`, creating a random 32-byte one if there is none yet. */
export async function sharedSecret(db: Queryable, schema: string, name: string): Promise<Buffer> {
  const table = qualified(schema, "service_secret");
  await db.query(`INSERT INTO ${table} (name, secret) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [name, randomBytes(32)]);
  const { rows } = await db.query(`SELECT secret FROM ${table} WHERE name = $1`, [name]);
  return (rows[0] as { secret: Buffer }).secret;
}
