/**
 * zod issues as field violations: a path under the request (`payload.amount`, `payload.to[2]`) and
 * a stable reason.
 */
import type { z } from "zod";
import type { FieldViolation } from "../../engine/index.js";

/** Formats a zod path under `prefix`. */
export function fieldPath(prefix: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === "number" ? `${acc}[${key}]` : `${acc}.${String(key)}`), prefix);
}

const reasons: Record<string, string> = {
  invalid_type: "INVALID_TYPE",
  too_small: "TOO_SMALL",
  too_big: "TOO_BIG",
  invalid_format: "INVALID_FORMAT",
  invalid_value: "INVALID_VALUE",
  invalid_union: "INVALID_VALUE",
  not_multiple_of: "INVALID_VALUE",
  custom: "INVALID_VALUE",
};

/** The violations of a failed zod parse. */
export function zodViolations(error: z.ZodError, prefix: string, what: string): FieldViolation[] {
  return issueViolations(error.issues, prefix, what);
}

function issueViolations(issues: readonly z.core.$ZodIssue[], prefix: string, what: string): FieldViolation[] {
  return issues.flatMap((issue): FieldViolation[] => {
    const field = fieldPath(prefix, issue.path);
    if (issue.code === "invalid_union") {
      // The branch of the right shape (no type mismatch at the union itself) explains the problem best.
      const branch = issue.errors.find((branchIssues) => !branchIssues.some((i) => i.code === "invalid_type" && i.path.length === 0));
      if (branch) return issueViolations(branch, field, what);
    }
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({ field: `${field}.${key}`, description: `is not a field of ${what}`, reason: "UNKNOWN_FIELD" }));
    }
    if (issue.code === "invalid_type" && (issue as { input?: unknown }).input === undefined) {
      return [{ field, description: "is required", reason: "REQUIRED" }];
    }
    return [{ field, description: issue.message, reason: reasons[issue.code] ?? "INVALID_VALUE" }];
  });
}
