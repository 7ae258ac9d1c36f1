/**
 * One port for every protocol. Cleartext: the first bytes of each connection decide, the HTTP/2
 * preface (`PRI * HTTP/2.0`) goes to an HTTP/2 server, anything else to an HTTP/1.1 server, so
 * gRPC (h2c prior knowledge), Connect and gRPC-Web over either version share the port. TLS: one
 * HTTP/2 server that also accepts HTTP/1.1, chosen by ALPN.
 *
 * A connection that sends nothing within the first-bytes timeout is closed (slowloris); so is an
 * HTTP/1.1 connection whose request head is not complete by then, and an HTTP/2 connection that
 * opens no stream by then. A request whose message has not fully arrived within the request-read
 * timeout is cut off too (every RPC sends one message, so a stalled body is a client gone silent):
 * HTTP/1.1 answers 408 and closes the connection, HTTP/2 resets the stream. Responses, and so
 * server streams, are not limited; gRPC reflection is exempt (its request side is a stream). An
 * HTTP/2 connection with no open stream for the idle timeout is closed gracefully (GOAWAY; clients
 * reconnect on their next call), so idle connections cannot pile up; and at most `maxConnections` are
 * held at once (one over it is closed as it arrives).
 */
import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import net, { type AddressInfo, type Socket } from "node:net";
import type { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "../logger.js";

/** A request handler for both HTTP versions (what connectNodeAdapter returns). */
type Handler = ReturnType<typeof connectNodeAdapter>;

export interface OnePortServerOptions {
  host: string;
  port: number;
  handler: Handler;
  /** PEM files; both set: TLS. */
  tls?: { certFile: string; keyFile: string };
  firstByteTimeoutMs: number;
  /** How long a request may take to arrive whole, from its first byte. */
  requestReadTimeoutMs: number;
  /** How long an HTTP/2 connection may stay open with no stream and no traffic. */
  http2IdleTimeoutMs: number;
  /** Client connections held at once; one over it is closed as it arrives. */
  maxConnections: number;
  logger: Logger;
}

/** A listening server. */
export interface OnePortServer {
  readonly host: string;
  readonly port: number;
  readonly tls: boolean;
  /** Client connections open now. */
  connections(): number;
  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then closes everything. */
  close(graceMs: number): Promise<void>;
}

const H2_PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** Bidirectional RPCs, whose request side stays open for the whole call. */
const REQUEST_STREAMING_PREFIX = "/grpc.reflection.";

/**
 * Resets an HTTP/2 request's stream unless its request has arrived whole (END_STREAM) within
 * `timeoutMs`; HTTP/1.1 requests have Node's `requestTimeout` instead.
 */
function boundRequestRead(req: http2.Http2ServerRequest, timeoutMs: number): void {
  const stream = req.stream;
  if (stream.endAfterHeaders || (req.url ?? "").startsWith(REQUEST_STREAMING_PREFIX)) return;
  const timer = setTimeout(() => {
    if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
  }, timeoutMs);
  timer.unref();
  const done = () => clearTimeout(timer);
  req.once("end", done);
  stream.once("close", done);
}

/** Starts listening; resolves once the port is bound. */
export async function listenOnePort(options: OnePortServerOptions): Promise<OnePortServer> {
  const { firstByteTimeoutMs, requestReadTimeoutMs, http2IdleTimeoutMs, logger } = options;
  const sockets = new Set<Socket>();
  const sessions = new Set<http2.Http2Session>();
  // HTTP/1.1 requests in flight per socket, so that idle keep-alive connections can be closed first.
  const http1InFlight = new Map<Socket, number>();
  const handler: Handler = (req, res) => {
    if (req.httpVersionMajor === 1) {
      const socket = req.socket as Socket;
      const inFlight = http1InFlight.get(socket);
      // One close listener per socket, however many requests a keep-alive connection carries.
      if (inFlight === undefined) socket.once("close", () => http1InFlight.delete(socket));
      http1InFlight.set(socket, (inFlight ?? 0) + 1);
      res.once("close", () => {
        const left = (http1InFlight.get(socket) ?? 1) - 1;
        if (http1InFlight.has(socket)) http1InFlight.set(socket, Math.max(0, left));
      });
    } else {
      boundRequestRead(req as http2.Http2ServerRequest, requestReadTimeoutMs);
    }
    options.handler(req, res);
  };

  const trackSession = (session: http2.Http2Session) => {
    sessions.add(session);
    session.on("close", () => sessions.delete(session));
    session.on("error", () => {});
    // An HTTP/2 connection must open a stream within the first-bytes timeout.
    const timer = setTimeout(() => session.destroy(), firstByteTimeoutMs);
    session.once("stream", () => clearTimeout(timer));
    session.on("close", () => clearTimeout(timer));
    // Idle: no stream open for the idle timeout (a quiet watch keeps its connection).
    let open = 0;
    let idle: NodeJS.Timeout | undefined;
    session.on("stream", (stream) => {
      open++;
      clearTimeout(idle);
      stream.once("close", () => {
        if (--open > 0 || session.closed) return;
        idle = setTimeout(() => {
          if (open === 0 && !session.closed) session.close();
        }, http2IdleTimeoutMs);
        idle.unref();
      });
    });
    session.on("close", () => clearTimeout(idle));
  };

  // Streams are long-lived (watches), so a client may hold many at once on one connection.
  const h2Settings: http2.Settings = { maxConcurrentStreams: 4096, initialWindowSize: 1024 * 1024 };
  // How often Node checks the HTTP/1.1 head and request timeouts (its default is 30 s).
  const checkEveryMs = Math.max(50, Math.min(1000, Math.floor(firstByteTimeoutMs / 4)));
  const requestTimeout = Math.max(requestReadTimeoutMs, firstByteTimeoutMs);
  let outer: net.Server;
  let h1: http.Server | undefined;
  if (options.tls) {
    const secure = http2.createSecureServer(
      {
        cert: readFileSync(options.tls.certFile),
        key: readFileSync(options.tls.keyFile),
        allowHTTP1: true,
        settings: h2Settings,
        handshakeTimeout: firstByteTimeoutMs,
        // HTTP/1.1 over TLS (allowHTTP1): Node's own head and request timeouts.
        headersTimeout: firstByteTimeoutMs,
        requestTimeout,
        connectionsCheckingInterval: checkEveryMs,
      } as http2.SecureServerOptions,
      handler,
    );
    secure.on("session", trackSession);
    secure.on("secureConnection", (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    outer = secure;
  } else {
    const h1Server = http.createServer(
      { headersTimeout: firstByteTimeoutMs, requestTimeout, connectionsCheckingInterval: checkEveryMs, keepAliveTimeout: 5000 },
      handler,
    );
    h1 = h1Server;
    // Node enforces headersTimeout and requestTimeout only on a server that emitted "listening"
    // (which starts its connection tracking); this one never listens, it is handed connections.
    h1Server.emit("listening");
    const h2 = http2.createServer({ settings: h2Settings }, handler);
    h2.on("session", trackSession);
    h1Server.on("clientError", (err: NodeJS.ErrnoException, socket) => {
      // Answer only when no response is under way on the connection (as Node itself does).
      const inFlight = (socket as Socket & { _httpMessage?: http.ServerResponse })._httpMessage;
      if (socket.writable && !socket.destroyed && !inFlight?.headersSent) {
        socket.write(
          err.code === "ERR_HTTP_REQUEST_TIMEOUT"
            ? "HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n"
            : "HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n",
        );
      }
      // Closed once the answer is out, whether or not the client ever closes its side.
      (socket as Socket).destroySoon();
      logger.debug({ err: err.message }, "bad HTTP/1.1 request");
    });
    outer = net.createServer((socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      socket.on("error", () => {});
      const timer = setTimeout(() => socket.destroy(), firstByteTimeoutMs);
      let seen = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        seen = Buffer.concat([seen, chunk]);
        const n = Math.min(seen.length, H2_PREFACE.length);
        const isH2 = seen.subarray(0, n).equals(H2_PREFACE.subarray(0, n));
        if (isH2 && seen.length < H2_PREFACE.length) return; // wait for the whole preface
        socket.off("data", onData);
        clearTimeout(timer);
        socket.pause();
        socket.unshift(seen);
        (isH2 ? h2 : h1Server).emit("connection", socket);
        process.nextTick(() => socket.resume());
      };
      socket.on("data", onData);
    });
  }

  // Each connection holds memory (an idle HTTP/2 one ~35 KB), so a client that opens one per call
  // and never closes them cannot pile them up without bound: over the cap, Node closes a new
  // connection as it arrives. Logged at once, then at most every 10 s with how many were refused.
  outer.maxConnections = options.maxConnections;
  let dropped = 0;
  let dropLog: NodeJS.Timeout | undefined;
  const logDrops = () => {
    dropLog = undefined;
    if (dropped === 0) return;
    logger.warn({ refused: dropped, maxConnections: options.maxConnections }, "connections refused: MAX_CONNECTIONS reached");
    dropped = 0;
    dropLog = setTimeout(logDrops, 10_000).unref();
  };
  outer.on("drop", () => {
    dropped++;
    if (!dropLog) logDrops();
  });

  await new Promise<void>((resolve, reject) => {
    outer.once("error", reject);
    outer.listen(options.port, options.host, () => {
      outer.off("error", reject);
      resolve();
    });
  });
  const address = outer.address() as AddressInfo;
  logger.info({ host: address.address, port: address.port, tls: !!options.tls }, "listening");

  let closing: Promise<void> | undefined;
  return {
    host: address.address,
    port: address.port,
    tls: !!options.tls,
    connections: () => sockets.size,
    close(graceMs) {
      closing ??= (async () => {
        clearTimeout(dropLog);
        const closed = new Promise<void>((resolve) => outer.close(() => resolve()));
        for (const session of sessions) session.close();
        const deadline = Date.now() + graceMs;
        while ((sessions.size > 0 || sockets.size > 0) && Date.now() < deadline) {
          // HTTP/1.1 keep-alive connections with no request in flight can go now.
          for (const [socket, inFlight] of http1InFlight) if (inFlight === 0) socket.destroy();
          await new Promise((r) => setTimeout(r, 20));
        }
        for (const session of sessions) session.destroy();
        for (const socket of sockets) socket.destroy();
        h1?.close(() => {}); // stops its connection checks (it never listened)
        await closed;
      })();
      return closing;
    },
  };
}
