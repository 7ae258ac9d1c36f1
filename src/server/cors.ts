/**
 * CORS for browser clients (Connect-Web) on other origins: only the origins in CORS_ALLOWED_ORIGINS
 * (none by default) get the headers that let a page call the API and read its answers. Tokens still
 * decide what a call may do; CORS only decides which pages' scripts may send them.
 */
import { cors } from "@connectrpc/connect";
import type { connectNodeAdapter } from "@connectrpc/connect-node";

type Handler = ReturnType<typeof connectNodeAdapter>;

const allowMethods = cors.allowedMethods.join(", ");
const allowHeaders = [...cors.allowedHeaders, "Authorization", "X-Request-Id", "Traceparent"].join(", ");
const exposeHeaders = [...cors.exposedHeaders, "X-Request-Id"].join(", ");

/** `handler`, answering preflights and adding CORS headers for `allowedOrigins` (`*`: any origin). */
export function withCors(allowedOrigins: readonly string[], handler: Handler): Handler {
  if (allowedOrigins.length === 0) return handler;
  const any = allowedOrigins.includes("*");
  const allowed = new Set(allowedOrigins);
  return (req, res) => {
    const origin = req.headers.origin;
    if (typeof origin === "string" && (any || allowed.has(origin))) {
      res.setHeader("Access-Control-Allow-Origin", origin);
      res.setHeader("Vary", "Origin");
      if (req.method === "OPTIONS" && req.headers["access-control-request-method"]) {
        res.statusCode = 204;
        res.setHeader("Access-Control-Allow-Methods", allowMethods);
        res.setHeader("Access-Control-Allow-Headers", allowHeaders);
        res.setHeader("Access-Control-Max-Age", "7200");
        res.end();
        return;
      }
      res.setHeader("Access-Control-Expose-Headers", exposeHeaders);
    }
    handler(req, res);
  };
}
