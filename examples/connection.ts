/**
 * Where the examples connect: QUEUE_SERVICE_URL (default http://127.0.0.1:8080, as `npm start`) with
 * QUEUE_SERVICE_TOKEN, or else the admin token `npm start` generated into data/admin-token.
 */
import { readFileSync } from "node:fs";

export const baseUrl = process.env.QUEUE_SERVICE_URL ?? "http://127.0.0.1:8080";

export function token(): string {
  if (process.env.QUEUE_SERVICE_TOKEN) return process.env.QUEUE_SERVICE_TOKEN;
  try {
    return readFileSync(new URL("../data/admin-token", import.meta.url), "utf8").trim();
  } catch {
    throw new Error("no token: set QUEUE_SERVICE_TOKEN, or start the service once with `npm start` (it writes data/admin-token)");
  }
}
