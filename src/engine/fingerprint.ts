/**
 * The fingerprint of a request: SHA-256 of its canonical JSON (object keys sorted at every level),
 * so that the same request compares equal however its client ordered the keys.
 */
import { createHash } from "node:crypto";

/** JSON with object keys sorted recursively. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
}

/** SHA-256 of the canonical JSON of `value`. */
export function fingerprint(value: unknown): Buffer {
  return createHash("sha256").update(canonicalJson(value)).digest();
}
