/**
 * Lease tokens: what an external worker holds for one attempt. Opaque to the worker, signed with a
 * secret every replica shares (so any replica takes a token any other issued), and naming the attempt
 * (pg-boss queue, job id, retry count): the attempt's fence. Forging one for another job, or another
 * attempt of the same job, fails the signature.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import { ValidationError } from "./errors.js";

/** The attempt a lease names. */
export interface LeaseClaims {
  bossQueue: string;
  id: string;
  retryCount: number;
}

const MAX_TOKEN = 600;

/** Signs and verifies lease tokens. */
export function createLeaseTokens(secret: Buffer) {
  const mac = (body: string) => createHmac("sha256", secret).update("lease\u0000").update(body).digest();
  const invalid = (field: string) => new ValidationError([{ field, description: "is not a lease token of this service", reason: "INVALID_LEASE_TOKEN" }]);
  return {
    sign(c: LeaseClaims): string {
      const body = Buffer.from(JSON.stringify([c.bossQueue, c.id, c.retryCount])).toString("base64url");
      return `${body}.${mac(body).toString("base64url")}`;
    },
    /** The attempt `token` names; a ValidationError naming `field` when it is not one of ours. */
    verify(token: string, field = "lease_token"): LeaseClaims {
      const [body, signature, extra] = token.split(".");
      if (!body || !signature || extra !== undefined || token.length > MAX_TOKEN) throw invalid(field);
      const given = Buffer.from(signature, "base64url");
      const expected = mac(body);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid(field);
      const [bossQueue, id, retryCount] = JSON.parse(Buffer.from(body, "base64url").toString("utf8")) as [string, string, number];
      return { bossQueue, id, retryCount };
    },
  };
}

export type LeaseTokens = ReturnType<typeof createLeaseTokens>;
