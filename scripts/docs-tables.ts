/**
 * Rewrites the configuration table in README.md (between its config-table markers) from
 * src/config.ts. A test fails when the README's table is out of date.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { configurationTable } from "../src/config.js";

const path = new URL("../README.md", import.meta.url);
const readme = readFileSync(path, "utf8");
const updated = readme.replace(
  /(<!-- config-table:start -->)[\s\S]*?(<!-- config-table:end -->)/,
  (_m, start: string, end: string) => `${start}\n${configurationTable()}\n${end}`,
);
writeFileSync(path, updated);
