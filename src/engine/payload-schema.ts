/**
 * Payload schemas of registered job types: JSON Schema draft 2020-12, compiled by Ajv once per
 * schema version, reporting problems as field violations in the same words as the built-in types'
 * (REQUIRED, UNKNOWN_FIELD, INVALID_TYPE, TOO_SMALL, TOO_BIG, INVALID_FORMAT, INVALID_VALUE).
 *
 * A schema is data from an admin, so it is bounded (size, no remote references: Ajv never fetches)
 * and compiled in strict mode: an unknown keyword or a malformed schema is refused when the type is
 * registered, not when the first job arrives.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type { AdmissionProblem, JsonSchemaCheck, PayloadVerdict } from "./registry.js";

/** The largest schema accepted, as JSON. */
export const MAX_SCHEMA_BYTES = 64 * 1024;
/** Violations reported for one payload at most. */
const MAX_PROBLEMS = 20;

const ajv = new Ajv2020({ allErrors: true, strict: true, allowUnionTypes: true, validateFormats: true });
addFormats.default(ajv);

/** Why a schema cannot be used, or undefined when it compiles. */
export function schemaProblem(schema: unknown): string | undefined {
  if (typeof schema !== "object" || schema === null || Array.isArray(schema)) return "must be a JSON Schema object";
  if (Buffer.byteLength(JSON.stringify(schema)) > MAX_SCHEMA_BYTES) return `must be at most ${MAX_SCHEMA_BYTES} bytes as JSON`;
  const candidate = withoutId(schema as Record<string, unknown>);
  try {
    ajv.compile(candidate);
    ajv.removeSchema(candidate);
    return undefined;
  } catch (err) {
    return `is not a valid JSON Schema (draft 2020-12): ${(err as Error).message}`;
  }
}

/** Compiles a schema (it must have passed {@link schemaProblem}). */
export function compileSchema(schema: Record<string, unknown>): JsonSchemaCheck {
  const validate: ValidateFunction = ajv.compile(withoutId(schema));
  return {
    kind: "json-schema",
    schema,
    check(payload: unknown): PayloadVerdict {
      if (validate(payload)) return { ok: true };
      return { ok: false, problems: (validate.errors ?? []).slice(0, MAX_PROBLEMS).map(problemOf) };
    },
  };
}

/** Ajv keeps compiled schemas by `$id`: two versions of one type must not collide. */
function withoutId(schema: Record<string, unknown>): Record<string, unknown> {
  const { $id: _id, ...rest } = schema;
  return rest;
}

/** `/a/0/b~1c` -> ["a", 0, "b/c"]. */
function pathOf(pointer: string): (string | number)[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split("/")
    .map((p) => p.replaceAll("~1", "/").replaceAll("~0", "~"))
    .map((p) => (/^(0|[1-9][0-9]*)$/.test(p) ? Number(p) : p));
}

function problemOf(e: ErrorObject): AdmissionProblem {
  const path = pathOf(e.instancePath);
  const p = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case "required":
      return { path: [...path, String(p.missingProperty)], description: "is required", reason: "REQUIRED" };
    case "additionalProperties":
    case "unevaluatedProperties":
      return {
        path: [...path, String(p.additionalProperty ?? p.unevaluatedProperty)],
        description: "is not a field of this job type's payload",
        reason: "UNKNOWN_FIELD",
      };
    case "type":
      return { path, description: `must be ${String(p.type)}`, reason: "INVALID_TYPE" };
    case "minimum":
    case "exclusiveMinimum":
    case "minLength":
    case "minItems":
    case "minProperties":
      return { path, description: e.message ?? "is too small", reason: "TOO_SMALL" };
    case "maximum":
    case "exclusiveMaximum":
    case "maxLength":
    case "maxItems":
    case "maxProperties":
      return { path, description: e.message ?? "is too big", reason: "TOO_BIG" };
    case "pattern":
    case "format":
      return { path, description: e.message ?? "has the wrong format", reason: "INVALID_FORMAT" };
    default:
      return { path, description: e.message ?? `fails the schema's ${e.keyword} rule`, reason: "INVALID_VALUE" };
  }
}
