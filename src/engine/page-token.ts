/**
 * Page tokens: an opaque, signed keyset position. The signature covers the list's filters too, so a
 * token cannot be edited, nor reused with other filters; either is INVALID_ARGUMENT.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { ValidationError } from "./errors.js";
import { canonicalJson } from "./fingerprint.js";

/** Signs and verifies page tokens with a secret shared by every replica. */
export interface PageTokens {
  sign(scope: string, filter: unknown, position: unknown): string;
  /** The position in `token`; throws a ValidationError naming `field` when it was tampered with. */
  verify<T>(scope: string, filter: unknown, token: string, field?: string): T;
}

/** Creates the signer. */
export function createPageTokens(secret: Buffer): PageTokens {
  const mac = (scope: string, filter: unknown, body: string) =>
    createHmac("sha256", secret).update(scope).update("\u0000").update(canonicalJson(filter)).update("\u0000").update(body).digest();
  const invalid = (field: string, description: string) => new ValidationError([{ field, description, reason: "INVALID_PAGE_TOKEN" }]);
  return {
    sign(scope, filter, position) {
      const body = Buffer.from(JSON.stringify(position)).toString("base64url");
      return `${body}.${mac(scope, filter, body).toString("base64url")}`;
    },
    verify<T>(scope: string, filter: unknown, token: string, field = "page_token"): T {
      const [body, signature, extra] = token.split(".");
      if (!body || !signature || extra !== undefined || token.length > 1024) throw invalid(field, "is not a page token of this list");
      const expected = mac(scope, filter, body);
      const given = Buffer.from(signature, "base64url");
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw invalid(field, "is not valid for this list (tampered with, or issued for other filters)");
      }
      try {
        return JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as T;
      } catch {
        throw invalid(field, "is not a page token of this list");
      }
    },
  };
}
