/**
 * Configuration errors name the variable and the rule; tokens are parsed, hashed and compared
 * without ever appearing in an error; the development token file is private.
 */

import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, configurationTable, loadConfig, settings } from "../src/config.js";
import { developmentTokens, parseTokens, TokenConfigError } from "../src/server/tokens.js";
import { metricsTable } from "../src/telemetry/instruments.js";

const problemsOf = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
};

describe("configuration", () => {
  it("has defaults for a development start", () => {
    const c = loadConfig({});
    expect(c.port).toBe(8080);
    expect(c.host).toBe("127.0.0.1");
    expect(c.databaseUrl).toBeUndefined();
  });

  it("reads an empty value as unset, except where empty has a meaning of its own", () => {
    expect(loadConfig({ PORT: "" }).port).toBe(8080);
    expect(loadConfig({}).analyticsSchedule).toBe("* * * * *");
    // "Empty: not scheduled."
    expect(loadConfig({ ANALYTICS_SCHEDULE: "" }).analyticsSchedule).toBe("");
  });

  it("names the variable and the rule of a bad value", () => {
    expect(problemsOf({ PORT: "eighty" })).toEqual([expect.stringMatching(/^PORT: must be an integer from 0 to 65535 \("eighty"\)$/)]);
    expect(problemsOf({ PORT: "70000" })[0]).toMatch(/^PORT: must be at most 65535/);
    expect(problemsOf({ LOG_LEVEL: "loud" })[0]).toMatch(/^LOG_LEVEL: must be one of/);
    expect(problemsOf({ DATABASE_SCHEMA: "Robert'); DROP" })[0]).toMatch(/^DATABASE_SCHEMA: must be a lower-case SQL identifier/);
  });

  it("never echoes a secret in an error", () => {
    const problems = problemsOf({ NODE_ENV: "production", DATABASE_URL: "postgres://u:hunter2@db/x" });
    expect(problems.join()).not.toContain("hunter2");
  });

  it("refuses a non-loopback HOST without TLS unless ALLOW_PLAINTEXT", () => {
    expect(problemsOf({ HOST: "0.0.0.0" })[0]).toMatch(/^HOST: 0\.0\.0\.0 is not a loopback address/);
    expect(problemsOf({ HOST: "0.0.0.0", ALLOW_PLAINTEXT: "true" })).toEqual([]);
    expect(problemsOf({ HOST: "::1" })).toEqual([]);
    expect(problemsOf({ HOST: "0.0.0.0", TLS_CERT_FILE: "/c.pem" })[0]).toMatch(/TLS_CERT_FILE and TLS_KEY_FILE: set both or neither/);
  });

  it("refuses provider URLs that are not https:// unless the development override is set", () => {
    const http = { PAYMENT_PROVIDER: "http", PAYMENT_GATEWAY_URL: "http://gateway.internal", MINT_PROVIDER: "http", MINT_SERVICE_URL: "http://mints.internal" };
    const problems = problemsOf(http);
    expect(problems).toContainEqual(expect.stringMatching(/^PAYMENT_GATEWAY_URL: must be an https:\/\/ URL/));
    expect(problems).toContainEqual(expect.stringMatching(/^MINT_SERVICE_URL: must be an https:\/\/ URL/));
    expect(problemsOf({ ...http, PROVIDER_ALLOW_HTTP: "true" })).toEqual([]);
    expect(problemsOf({ ...http, PAYMENT_GATEWAY_URL: "https://gateway.example", MINT_SERVICE_URL: "https://mints.example" })).toEqual([]);
  });

  it("takes webhook hosts with ports and internal networks as CIDR ranges", () => {
    expect(
      problemsOf({ ALERT_WEBHOOK_ALLOWED_HOSTS: "hooks.example.com:8443, 10.0.0.7:80", ALERT_WEBHOOK_ALLOWED_NETWORKS: "10.20.0.0/16, fd00::/8" }),
    ).toEqual([]);
    expect(problemsOf({ ALERT_WEBHOOK_ALLOWED_NETWORKS: "10.20.0.0/33" })[0]).toMatch(/^ALERT_WEBHOOK_ALLOWED_NETWORKS: must be CIDR ranges/);
    expect(problemsOf({ ALERT_WEBHOOK_ALLOWED_HOSTS: "https://hooks.example.com/x" })[0]).toMatch(/^ALERT_WEBHOOK_ALLOWED_HOSTS: must be hosts/);
  });

  it("refuses the embedded database and a generated token in production", () => {
    const problems = problemsOf({ NODE_ENV: "production" });
    expect(problems).toContainEqual(expect.stringMatching(/^DATABASE_URL: required when NODE_ENV=production/));
    expect(problems).toContainEqual(expect.stringMatching(/^AUTH_TOKENS: required when NODE_ENV=production/));
  });

  it("documents every setting in the README's configuration table (npm run docs:tables)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    expect(readme).toContain(`<!-- config-table:start -->\n${configurationTable()}\n<!-- config-table:end -->`);
    for (const s of Object.values(settings)) expect(readme, s.env).toContain(`| \`${s.env}\` |`);
  });

  it("documents every metric in the README's metrics table (npm run docs:tables)", () => {
    const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
    expect(readme).toContain(`<!-- metrics-table:start -->\n${metricsTable()}\n<!-- metrics-table:end -->`);
  });
});

describe("tokens", () => {
  it("parses name:role:token and sha256:<hex>, and verifies in constant time", () => {
    const hex = createHash("sha256").update("a-hashed-token-of-some-length").digest("hex");
    const store = parseTokens(`ops:admin:plain-token-0123456789, billing:service:sha256:${hex}`);
    expect(store.verify("plain-token-0123456789")).toEqual({ name: "ops", role: "admin" });
    expect(store.verify("a-hashed-token-of-some-length")).toEqual({ name: "billing", role: "service" });
    expect(store.verify("wrong")).toBeUndefined();
    expect(store.verify(`sha256:${hex}`)).toBeUndefined();
  });

  it("lets a name hold several tokens of one role, for rotation", () => {
    const store = parseTokens("checkout:service:old-token-0123456789, checkout:service:new-token-0123456789, ops:admin:ops-token-0123456789");
    expect(store.verify("old-token-0123456789")).toEqual({ name: "checkout", role: "service" });
    expect(store.verify("new-token-0123456789")).toEqual({ name: "checkout", role: "service" });
    expect(store.principals.map((p) => p.name)).toEqual(["checkout", "ops"]);
    expect(() => parseTokens("a:service:same-token-0123456789, b:service:same-token-0123456789")).toThrow(/the same token is listed twice/);
    expect(() => parseTokens("a:admin:plain-token-0123456789, a:service:plain-token-9876543210")).toThrow(/the name a has two roles/);
  });

  it("rejects malformed entries without echoing the token", () => {
    const bad = [
      "ops:root:plain-token-0123456789",
      "ops:admin",
      "ops:admin:short",
      "a:admin:plain-token-0123456789,a:service:plain-token-9876543210",
      "x:admin:sha256:abc",
    ];
    for (const spec of bad) {
      expect(() => parseTokens(spec)).toThrow(TokenConfigError);
      try {
        parseTokens(spec);
      } catch (err) {
        expect((err as Error).message).not.toMatch(/plain-token/);
      }
    }
  });

  it("generates a development admin token once, readable only by its owner", () => {
    const dir = mkdtempSync(join(tmpdir(), "qs-token-"));
    const first = developmentTokens(dir);
    expect(first.created).toBe(true);
    expect(statSync(first.path).mode & 0o777).toBe(0o600);
    const token = readFileSync(first.path, "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(40);
    expect(first.store.verify(token)).toEqual({ name: "admin", role: "admin" });
    const second = developmentTokens(dir);
    expect(second.created).toBe(false);
    expect(second.store.verify(token)).toEqual({ name: "admin", role: "admin" });
  });
});
