/**
 * Plain HTTP routes beside the RPCs: `GET /healthz` (the process is alive) and `GET /readyz`
 * (ready to serve: database and engine up, not stopping), the dashboard under `/ui/` when it is on
 * (ui-assets.ts). Anything else is 404.
 */
import type { connectNodeAdapter } from "@connectrpc/connect-node";
import type { HealthMonitor } from "../health.js";

type NodeHandler = ReturnType<typeof connectNodeAdapter>;
type Req = Parameters<NodeHandler>[0];
type Res = Parameters<NodeHandler>[1];
export type RouteRequest = Req;
export type RouteResponse = Res;

/** Extra routes (e.g. `/metrics`), by path. */
export type RouteTable = Record<string, (req: Req, res: Res) => void | Promise<void>>;

/** The fallback handler for requests that are not RPCs. */
export function httpRoutes(health: HealthMonitor, extra: RouteTable = {}, ui?: (req: Req, res: Res, path: string) => boolean): (req: Req, res: Res) => void {
  const send = (res: Res, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.statusCode = status;
    res.setHeader("content-type", "application/json");
    res.setHeader("cache-control", "no-store");
    res.setHeader("content-length", Buffer.byteLength(text));
    res.end(text);
  };
  return (req, res) => {
    const path = (req.url ?? "/").split("?")[0]!;
    const contentType = String(req.headers["content-type"] ?? "");
    if (req.method === "POST" && contentType.startsWith("application/grpc")) {
      // An unknown RPC asked for over gRPC or gRPC-Web: a trailers-only UNIMPLEMENTED, as gRPC expects.
      res.statusCode = 200;
      res.setHeader("content-type", contentType.startsWith("application/grpc-web") ? "application/grpc-web+proto" : "application/grpc");
      res.setHeader("grpc-status", "12");
      res.setHeader("grpc-message", encodeURIComponent(`unknown method ${path}`));
      res.end();
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") return send(res, 404, { error: "not found" });
    if (ui?.(req, res, path)) return;
    if (path === "/healthz") return send(res, 200, { status: "alive" });
    if (path === "/readyz") {
      const ready = health.ready();
      return send(res, ready ? 200 : 503, {
        status: ready ? "ready" : "not ready",
        components: health.components().map(({ name, status, detail }) => ({ name, status, detail })),
      });
    }
    const route = extra[path];
    if (route) {
      Promise.resolve(route(req, res)).catch(() => {
        if (!res.headersSent) send(res, 500, { error: "internal error" });
        else res.end();
      });
      return;
    }
    send(res, 404, { error: "not found" });
  };
}
