/**
 * The node flags `npm start` runs the service with (package.json's start script, e.g. its heap limits),
 * so that the service tests and benchmarks spawn as a process runs as deployed.
 */
import { readFileSync } from "node:fs";

export const startFlags: readonly string[] = (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")).scripts.start as string)
  .split(/\s+/)
  .filter((t) => t.startsWith("--"));
