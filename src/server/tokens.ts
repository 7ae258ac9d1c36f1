/**
 * Bearer tokens: parsed from AUTH_TOKENS (`name:role:token`, token possibly `sha256:<hex>`), kept
 * only as SHA-256 digests, compared in constant time. When AUTH_TOKENS is unset, a development
 * admin token is generated into DATA_DIR/admin-token (mode 0600); only its path is ever printed.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

import type { Principal, Role } from "../rpc/call-context.js";

export type { Principal, Role };

interface TokenEntry extends Principal {
  readonly digest: Buffer;
}

/** Verifies bearer tokens. */
export interface TokenStore {
  /** The principal a presented token belongs to, or undefined. Constant time over all tokens. */
  verify(token: string): Principal | undefined;
  readonly principals: readonly Principal[];
}

/** A malformed AUTH_TOKENS value; the message never contains a token. */
export class TokenConfigError extends Error {
  override name = "TokenConfigError";
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** Parses AUTH_TOKENS. */
export function parseTokens(spec: string): TokenStore {
  const entries: TokenEntry[] = [];
  const roles = new Map<string, string>();
  spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)
    .forEach((item, index) => {
      const first = item.indexOf(":");
      const second = item.indexOf(":", first + 1);
      if (first < 0 || second < 0) throw new TokenConfigError(`AUTH_TOKENS: entry ${index + 1} must be name:role:token`);
      const name = item.slice(0, first);
      const role = item.slice(first + 1, second);
      const token = item.slice(second + 1);
      if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) throw new TokenConfigError(`AUTH_TOKENS: entry ${index + 1}: the name must be 1-64 of A-Z a-z 0-9 _ . -`);
      if (role !== "service" && role !== "worker" && role !== "admin")
        throw new TokenConfigError(`AUTH_TOKENS: entry ${index + 1} (${name}): role must be service, worker or admin`);
      // A name may have several tokens (to rotate one: add the new token under the same name, move
      // the clients over, remove the old one), all with one role.
      const earlier = roles.get(name);
      if (earlier !== undefined && earlier !== role) throw new TokenConfigError(`AUTH_TOKENS: the name ${name} has two roles (${earlier} and ${role})`);
      roles.set(name, role);
      let digest: Buffer;
      if (token.startsWith("sha256:")) {
        const hex = token.slice("sha256:".length);
        if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new TokenConfigError(`AUTH_TOKENS: entry ${index + 1} (${name}): sha256: must be followed by 64 hex digits`);
        digest = Buffer.from(hex, "hex");
      } else {
        if (token.length < 16) throw new TokenConfigError(`AUTH_TOKENS: entry ${index + 1} (${name}): the token must be at least 16 characters`);
        digest = sha256(token);
      }
      if (entries.some((e) => e.digest.equals(digest))) throw new TokenConfigError(`AUTH_TOKENS: entry ${index + 1} (${name}): the same token is listed twice`);
      entries.push({ name, role, digest });
    });
  if (entries.length === 0) throw new TokenConfigError("AUTH_TOKENS: no token given");
  return tokenStore(entries);
}

/** Tokens verified so far are remembered (up to this many), to spare a hash per call. */
const VERIFIED_CACHE_MAX = 1000;

function tokenStore(entries: TokenEntry[]): TokenStore {
  const verified = new Map<string, Principal>();
  return {
    principals: [...new Map(entries.map(({ name, role }) => [name, { name, role }])).values()],
    verify(token) {
      const hit = verified.get(token);
      if (hit) return hit;
      const presented = sha256(token);
      let found: TokenEntry | undefined;
      // Compare against every entry so the time taken does not say which one matched.
      for (const entry of entries) {
        if (timingSafeEqual(presented, entry.digest) && !found) found = entry;
      }
      if (!found) return undefined;
      const principal = { name: found.name, role: found.role };
      if (verified.size >= VERIFIED_CACHE_MAX) verified.clear();
      verified.set(token, principal);
      return principal;
    },
  };
}

/** The generated development admin token's file. */
export function adminTokenPath(dataDir: string): string {
  return join(dataDir, "admin-token");
}

/**
 * Reads the development admin token from DATA_DIR/admin-token, creating it (mode 0600) on first
 * start. Returns the store and whether the file was created.
 */
export function developmentTokens(dataDir: string): { store: TokenStore; path: string; created: boolean } {
  const path = adminTokenPath(dataDir);
  let created = false;
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
    created = true;
  }
  chmodSync(path, 0o600);
  const token = readFileSync(path, "utf8").trim();
  return { store: tokenStore([{ name: "admin", role: "admin", digest: sha256(token) }]), path, created };
}
