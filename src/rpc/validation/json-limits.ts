/**
 * Structural limits of JSON payloads, checked before any schema: size, nesting depth, string length,
 * finite numbers. A payload past them is rejected without looking further.
 */
import type { FieldViolation } from "../../engine/errors.js";

/** The limits of a payload. */
export interface JsonLimits {
  maxBytes: number;
  maxDepth: number;
  maxStringBytes: number;
}

/** API.md's defaults besides the configurable size: 32 levels, 64 KiB strings. */
export const PAYLOAD_MAX_DEPTH = 32;
export const PAYLOAD_MAX_STRING_BYTES = 64 * 1024;

/** The violations of `value` against `limits`, reported at `field`. */
export function checkJsonLimits(value: unknown, limits: JsonLimits, field: string): FieldViolation[] {
  const violations: FieldViolation[] = [];
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? "");
  if (bytes > limits.maxBytes) {
    return [{ field, description: `is ${bytes} bytes as JSON; the limit is ${limits.maxBytes}`, reason: "TOO_LARGE" }];
  }
  const visit = (v: unknown, path: string, depth: number): boolean => {
    if (depth > limits.maxDepth) {
      violations.push({ field, description: `is nested deeper than ${limits.maxDepth} levels`, reason: "TOO_DEEP" });
      return false;
    }
    if (typeof v === "string") {
      if (Buffer.byteLength(v) > limits.maxStringBytes) violations.push({ field: path, description: `is longer than ${limits.maxStringBytes} bytes`, reason: "TOO_LONG" });
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) violations.push({ field: path, description: "must be a finite number", reason: "INVALID_VALUE" });
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) if (!visit(v[i], `${path}[${i}]`, depth + 1)) return false;
    } else if (v !== null && typeof v === "object") {
      for (const [k, child] of Object.entries(v)) {
        if (Buffer.byteLength(k) > limits.maxStringBytes) violations.push({ field: path, description: `has a key longer than ${limits.maxStringBytes} bytes`, reason: "TOO_LONG" });
        if (!visit(child, `${path}.${k}`, depth + 1)) return false;
      }
    }
    return violations.length < 100;
  };
  visit(value, field, 1);
  return violations;
}
