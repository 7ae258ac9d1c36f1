/**
 * Rewrites the generated tables of README.md (between their markers) from the code: the
 * configuration table from src/config.ts and the metrics table from src/telemetry/instruments.ts.
 * Tests fail when the README's tables are out of date.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { configurationTable } from "../src/config.js";
import { metricsTable } from "../src/telemetry/instruments.js";

const path = new URL("../README.md", import.meta.url);
let readme = readFileSync(path, "utf8");
for (const [marker, table] of [
  ["config-table", configurationTable()],
  ["metrics-table", metricsTable()],
] as const) {
  const pattern = new RegExp(`(<!-- ${marker}:start -->)[\\s\\S]*?(<!-- ${marker}:end -->)`);
  if (!pattern.test(readme)) throw new Error(`README.md has no ${marker} markers`);
  readme = readme.replace(pattern, (_m, start: string, end: string) => `${start}\n${table}\n${end}`);
}
writeFileSync(path, readme);
