/**
 * Structural limits of JSON payloads, checked before any schema: size, nesting depth, string length,
 * finite numbers, and text PostgreSQL can store (no NUL character, no lone UTF-16 surrogate, in
 * values and in keys). A payload past them is rejected without looking further.
 */
import type { FieldViolation } from "../../engine/index.js";

/** The limits of a payload. */
export interface JsonLimits {
  maxBytes: number;
  maxDepth: number;
  maxStringBytes: number;
}

/** API.md's defaults besides the configurable size: 32 levels, 64 KiB strings. */
export const PAYLOAD_MAX_DEPTH = 32;
export const PAYLOAD_MAX_STRING_BYTES = 64 * 1024;

/**
 * The UTF-8 size of `s` exceeds `max`. A UTF-16 code unit is at most 3 UTF-8 bytes, so a string of
 * at most `max / 3` units is within the limit without being measured.
 */
const longerThan = (s: string, max: number) => s.length * 3 > max && Buffer.byteLength(s) > max;

/** What is wrong with a string as stored text, if anything. */
export function textProblem(s: string): { description: string; reason: string } | undefined {
  if (s.includes("\u0000")) return { description: "must not contain the NUL character (U+0000)", reason: "INVALID_CHARACTER" };
  if (!s.isWellFormed()) return { description: "must be valid Unicode (it holds a lone UTF-16 surrogate)", reason: "INVALID_CHARACTER" };
  return undefined;
}

/** The violations of `value` against `limits`, reported at `field`. */
export function checkJsonLimits(value: unknown, limits: JsonLimits, field: string): FieldViolation[] {
  const violations: FieldViolation[] = [];
  const json = JSON.stringify(value) ?? "";
  if (longerThan(json, limits.maxBytes)) {
    return [{ field, description: `is ${Buffer.byteLength(json)} bytes as JSON; the limit is ${limits.maxBytes}`, reason: "TOO_LARGE" }];
  }
  // The path of the value being visited (object keys and array indexes), formatted only for a violation.
  const segments: (string | number)[] = [];
  const path = () => segments.reduce<string>((acc, s) => (typeof s === "number" ? `${acc}[${s}]` : `${acc}.${s}`), field);
  const visit = (v: unknown, depth: number): boolean => {
    if (depth > limits.maxDepth) {
      violations.push({ field: path(), description: `is nested deeper than ${limits.maxDepth} levels (the limit of ${field})`, reason: "TOO_DEEP" });
      return false;
    }
    if (typeof v === "string") {
      if (longerThan(v, limits.maxStringBytes))
        violations.push({ field: path(), description: `is longer than ${limits.maxStringBytes} bytes`, reason: "TOO_LONG" });
      else {
        const problem = textProblem(v);
        if (problem) violations.push({ field: path(), ...problem });
      }
    } else if (typeof v === "number") {
      if (!Number.isFinite(v)) violations.push({ field: path(), description: "must be a finite number", reason: "INVALID_VALUE" });
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        segments.push(i);
        const go = visit(v[i], depth + 1);
        segments.pop();
        if (!go) return false;
      }
    } else if (v !== null && typeof v === "object") {
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        if (longerThan(k, limits.maxStringBytes))
          violations.push({ field: path(), description: `has a key longer than ${limits.maxStringBytes} bytes`, reason: "TOO_LONG" });
        else {
          const problem = textProblem(k);
          if (problem) violations.push({ field: path(), description: `has a key that ${problem.description}`, reason: problem.reason });
        }
        segments.push(k);
        const go = visit(o[k], depth + 1);
        segments.pop();
        if (!go) return false;
      }
    }
    return violations.length < 100;
  };
  visit(value, 1);
  return violations;
}
