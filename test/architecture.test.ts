/**
 * The shape of src, checked: no import cycle; the layers' arrows run one way (server -> rpc ->
 * engine -> store/db; workers -> engine; providers below workers); the API layer sees only the
 * engine's public surface (src/engine/index.ts); and only the job store (src/engine/store) names
 * pg-boss's tables or imports pg-boss.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const src = fileURLToPath(new URL("../src/", import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const sources = files(src).map((path) => ({ path, rel: relative(src, path), text: readFileSync(path, "utf8") }));
/** Each file's imports of other files of src, as paths relative to src. */
const imports = new Map(
  sources.map((f) => [
    f.rel,
    [...f.text.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)].map((m) =>
      relative(src, normalize(join(dirname(f.path), m[1]!.replace(/\.js$/, ".ts")))),
    ),
  ]),
);
const layerOf = (rel: string) => (rel.includes("/") ? rel.split("/")[0]! : rel.replace(/\.ts$/, ""));

describe("the shape of src", () => {
  it("has no import cycle", () => {
    const cycles: string[] = [];
    const state = new Map<string, "visiting" | "done">();
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        cycles.push([...path.slice(path.indexOf(file)), file].join(" -> "));
        return;
      }
      state.set(file, "visiting");
      for (const next of imports.get(file) ?? []) if (imports.has(next)) visit(next, [...path, file]);
      state.set(file, "done");
    };
    for (const file of imports.keys()) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it("keeps the layers' arrows one way", () => {
    // What each layer must not import.
    const forbidden: Record<string, string[]> = {
      rpc: ["server", "app", "main", "workers", "providers"],
      engine: ["server", "rpc", "workers", "providers", "app", "main"],
      workers: ["server", "rpc", "app", "main"],
      providers: ["server", "rpc", "workers", "app", "main"],
      db: ["server", "rpc", "engine", "workers", "providers", "app", "main"],
    };
    const wrong = [...imports].flatMap(([file, deps]) => deps.filter((d) => forbidden[layerOf(file)]?.includes(layerOf(d))).map((d) => `${file} -> ${d}`));
    expect(wrong).toEqual([]);
  });

  it("lets the API layer see only the engine's public surface", () => {
    const wrong = [...imports].flatMap(([file, deps]) =>
      layerOf(file) === "rpc" ? deps.filter((d) => layerOf(d) === "engine" && d !== "engine/index.ts").map((d) => `${file} -> ${d}`) : [],
    );
    expect(wrong).toEqual([]);
  });

  it("names pg-boss's tables and imports pg-boss only in the job store", () => {
    const outside = sources.filter((f) => !f.rel.startsWith("engine/store/"));
    expect(outside.filter((f) => /qualified\(\s*(options\.)?bossSchema/.test(f.text)).map((f) => f.rel)).toEqual([]);
    expect(outside.filter((f) => /from "pg-boss"/.test(f.text) && !/import type/.test(f.text.match(/.*from "pg-boss".*/)![0])).map((f) => f.rel)).toEqual([]);
  });
});
