/**
 * Once per test run: a PostgreSQL to test against (DATABASE_URL when set, else one throwaway
 * embedded cluster with durability off) and a fresh build of dist/ for tests that start the service
 * as a real process.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { type EmbeddedPostgres, removeDataDir, startEmbeddedPostgres } from "../../src/db/embedded-postgres.js";

declare module "vitest" {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

let embedded: EmbeddedPostgres | undefined;
let dataRoot: string | undefined;

export async function setup(project: TestProject): Promise<void> {
  execFileSync("npm", ["run", "--silent", "build"], { stdio: "inherit" });
  let url = process.env.DATABASE_URL;
  if (!url) {
    dataRoot = mkdtempSync(join(tmpdir(), "queue-service-test-"));
    chmodSync(dataRoot, 0o755); // PostgreSQL runs unprivileged when the tests run as root
    embedded = await startEmbeddedPostgres({ dataDir: join(dataRoot, "pg"), ephemeral: true, database: "test" });
    url = embedded.url;
  }
  project.provide("databaseUrl", url);
}

export async function teardown(): Promise<void> {
  await embedded?.stop();
  if (dataRoot) removeDataDir(dataRoot);
}
