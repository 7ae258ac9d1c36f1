/**
 * Field schemas shared by the job types' payload schemas.
 */
import { z } from "zod";

/** Currency codes ICU knows: the ISO 4217 list, without a hand-kept copy. */
const currencies = new Set(Intl.supportedValuesOf("currency"));

/** An identifier from another system: 1-200 printable characters. */
export const externalId = z
  .string()
  .min(1, "must not be empty")
  .max(200, "must be at most 200 characters")
  .regex(/^[\x21-\x7e]+$/, "must be printable ASCII without spaces");

/** An amount in minor units (cents): a positive safe integer. */
export const minorUnits = z
  .number()
  .int("must be an integer (minor units, e.g. cents)")
  .positive("must be greater than 0")
  .max(Number.MAX_SAFE_INTEGER, "is too large");

/** An ISO 4217 currency code in upper case, e.g. `USD`. */
export const currencyCode = z
  .string()
  .regex(/^[A-Z]{3}$/, { message: "must be a three-letter ISO 4217 code in upper case, e.g. USD", abort: true })
  .refine((c) => currencies.has(c), "is not an ISO 4217 currency code");

/** An email address. */
export const emailAddress = z.email("must be an email address").max(254, "must be at most 254 characters");

/** An RFC 3339 timestamp with an offset. */
export const rfc3339 = z.iso.datetime({ offset: true, message: "must be an RFC 3339 timestamp, e.g. 2026-01-31T12:00:00Z" });
