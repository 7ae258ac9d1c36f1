/**
 * A cleartext HTTP/2 proxy for unary calls that can lose a response: it forwards a call to the
 * service, lets the service answer in full, and then resets the client's stream with REFUSED_STREAM
 * instead of passing the answer on, as a dying load balancer or a dropped connection would.
 */
import http2 from "node:http2";
import type { AddressInfo } from "node:net";

export interface LossyProxy {
  readonly baseUrl: string;
  /** Calls to these paths (e.g. `/jobs.v1.JobService/AddJob`) lose their next response. */
  loseNext(path: string): void;
  /** Paths of the calls seen, with what happened to each. */
  readonly calls: { path: string; outcome: "forwarded" | "lost" }[];
  close(): Promise<void>;
}

export async function startLossyProxy(upstream: string): Promise<LossyProxy> {
  const session = http2.connect(upstream);
  session.on("error", () => {});
  const toLose = new Set<string>();
  const calls: LossyProxy["calls"] = [];
  const server = http2.createServer();
  const clients = new Set<http2.ServerHttp2Session>();
  server.on("session", (s) => {
    clients.add(s);
    s.once("close", () => clients.delete(s));
  });
  server.on("stream", (stream, headers) => {
    const path = String(headers[":path"]);
    stream.on("error", () => {}); // closing with REFUSED_STREAM reports it on this side too
    const forward: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(":") || k === ":method" || k === ":path") forward[k] = v;
    const up = session.request(forward);
    stream.pipe(up);
    let head: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    const body: Buffer[] = [];
    up.on("response", (h) => (head = h));
    up.on("trailers", (t) => (trailers = t));
    up.on("data", (d: Buffer) => body.push(d));
    up.on("error", () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    up.on("end", () => {
      if (toLose.delete(path)) {
        calls.push({ path, outcome: "lost" });
        stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
        return;
      }
      calls.push({ path, outcome: "forwarded" });
      const { ":status": status, ...rest } = head;
      stream.respond({ ":status": status ?? 200, ...strip(rest) }, { waitForTrailers: true });
      stream.on("wantTrailers", () => stream.sendTrailers(strip(trailers)));
      stream.end(Buffer.concat(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    baseUrl: `http://127.0.0.1:${port}`,
    loseNext: (path) => toLose.add(path),
    calls,
    close: async () => {
      session.close();
      for (const s of clients) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Headers without the connection-level ones HTTP/2 forbids forwarding. */
function strip(h: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) if (!k.startsWith(":") && v !== undefined) out[k] = v;
  return out;
}
