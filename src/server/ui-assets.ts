/**
 * The operations dashboard's static files (`npm run build` puts them in dist/ui), served at /ui/ on
 * the API's port: read once into memory (a few hundred KiB), gzipped once, with a strict
 * Content-Security-Policy. Hashed assets are cached for a year; the page itself is revalidated on
 * every load, so a new build is seen at once. Any other path under /ui/ is the page (the dashboard
 * routes in the browser). `GET /ui/session` tells the page who a bearer token belongs to.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { extname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import type { RouteRequest, RouteResponse } from "./http-routes.js";
import type { TokenStore } from "./tokens.js";

/** Same-origin only: scripts, styles, images and API calls from this port; no frames, no plugins. */
export const CONTENT_SECURITY_POLICY =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
  ".txt": "text/plain; charset=utf-8",
};

interface Asset {
  body: Buffer;
  gzipped?: Buffer;
  type: string;
  immutable: boolean;
}

/** Where the build puts the dashboard: dist/ui beside dist/src (or the repository's dist/ui when run from src). */
export function defaultUiDir(): string {
  const here = fileURLToPath(new URL("../../ui/", import.meta.url));
  return existsSync(join(here, "index.html")) ? here : fileURLToPath(new URL("../../dist/ui/", import.meta.url));
}

function load(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  if (!existsSync(join(dir, "index.html"))) return assets;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const rel = relative(dir, path).split("\\").join("/");
        const body = readFileSync(path);
        const type = TYPES[extname(name)] ?? "application/octet-stream";
        const compressible = /text|javascript|svg|json/.test(type) && body.length > 1024;
        assets.set(rel, { body, type, gzipped: compressible ? gzipSync(body, { level: 9 }) : undefined, immutable: rel.startsWith("assets/") });
      }
    }
  };
  walk(dir);
  return assets;
}

/** The dashboard's routes for the HTTP fallback: `/`, `/ui` and everything under `/ui/`. */
export function uiRoutes(options: { dir: string; tokens: TokenStore }) {
  const assets = load(options.dir);
  const page = assets.get("index.html");

  function send(req: RouteRequest, res: RouteResponse, asset: Asset): void {
    const gzip = asset.gzipped && /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
    const body = gzip ? asset.gzipped! : asset.body;
    res.statusCode = 200;
    res.setHeader("content-type", asset.type);
    res.setHeader("cache-control", asset.immutable ? "public, max-age=31536000, immutable" : "no-cache");
    res.setHeader("vary", "accept-encoding");
    if (gzip) res.setHeader("content-encoding", "gzip");
    res.setHeader("content-length", body.length);
    securityHeaders(res);
    if (req.method === "HEAD") res.end();
    else res.end(body);
  }

  function plain(res: RouteResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader("content-type", "application/json");
    res.setHeader("cache-control", "no-store");
    for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
    securityHeaders(res);
    res.end(text);
  }

  /** Answers `path` if it is the dashboard's; false otherwise. */
  return function handle(req: RouteRequest, res: RouteResponse, path: string): boolean {
    if (path === "/") {
      // Browsers (asking for HTML) go to the dashboard; anything else gets the 404 it always got.
      if (!String(req.headers.accept ?? "").includes("text/html")) return false;
      res.statusCode = 302;
      res.setHeader("location", "/ui/");
      res.end();
      return true;
    }
    if (path === "/ui") {
      res.statusCode = 301;
      res.setHeader("location", "/ui/");
      res.end();
      return true;
    }
    if (!path.startsWith("/ui/")) return false;
    if (path === "/ui/session") {
      const match = /^Bearer\s+(\S{1,4096})\s*$/i.exec(String(req.headers.authorization ?? ""));
      const principal = match ? options.tokens.verify(match[1]!) : undefined;
      if (!principal) plain(res, 401, { error: "the token is not valid" }, { "www-authenticate": "Bearer" });
      else plain(res, 200, { principal: principal.name, role: principal.role });
      return true;
    }
    if (!page) {
      plain(res, 503, { error: "the dashboard is not built: run npm run build" });
      return true;
    }
    let name: string;
    try {
      name = decodeURIComponent(path.slice("/ui/".length));
    } catch {
      plain(res, 400, { error: "bad path" });
      return true;
    }
    const asset = assets.get(name);
    if (asset) send(req, res, asset);
    else if (path.startsWith("/ui/assets/")) plain(res, 404, { error: "not found" });
    else send(req, res, page); // a dashboard route: the page routes it
    return true;
  };
}

function securityHeaders(res: RouteResponse): void {
  res.setHeader("content-security-policy", CONTENT_SECURITY_POLICY);
  res.setHeader("x-content-type-options", "nosniff");
  res.setHeader("referrer-policy", "no-referrer");
  res.setHeader("x-frame-options", "DENY");
}
