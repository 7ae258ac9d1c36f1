/**
 * A payment gateway and mint service for tests, speaking the HTTP protocol of
 * src/providers/http-provider.ts the way a real gateway (Stripe-like) does: every POST needs an
 * Idempotency-Key, a repeated key replays the first answer without a second effect, the same key with
 * other parameters is refused (400), a key whose first request is still running answers 409, and a
 * lookup by key tells whether an operation happened. Refunds name the charge they refund (404 for
 * an unknown charge, 400 beyond what is left of it). Failures on demand: the next N requests answer
 * a status, take long, or lose their answer after the effect.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

interface Stored {
  status: number;
  response: Record<string, unknown>;
  /** The parameters of the first request with the key. */
  body: string;
}

/** A recorded effect (a charge, refund or mint that happened). */
export interface Effect {
  kind: "charge" | "refund" | "mint";
  key: string;
  body: Record<string, unknown>;
  id: string;
}

export interface FakeGateway {
  readonly url: string;
  readonly effects: Effect[];
  /** Every request received (method, path, idempotency key). */
  readonly requests: { method: string; path: string; key: string | undefined }[];
  /** The next `n` POSTs answer `status` without any effect. */
  failNext(n: number, status: number): void;
  /** The next `n` POSTs make their effect, then answer after `ms`. */
  delayNext(n: number, ms: number): void;
  /** The next `n` POSTs make their effect, then drop the connection without an answer. */
  loseAnswerNext(n: number): void;
  close(): Promise<void>;
}

/** Starts the fake on a free loopback port. */
export async function startFakeGateway(): Promise<FakeGateway> {
  const stored = new Map<string, Stored>();
  const effects: Effect[] = [];
  const requests: FakeGateway["requests"] = [];
  let failing = { n: 0, status: 500 };
  let delaying = { n: 0, ms: 0 };
  let losing = 0;
  let counter = 0;
  const running = new Set<string>();
  const refunded = new Map<string, number>();

  const readJson = (req: IncomingMessage) =>
    new Promise<Record<string, unknown>>((resolve) => {
      let data = "";
      req.on("data", (c) => (data += c));
      req.on("end", () => {
        try {
          resolve(JSON.parse(data || "{}"));
        } catch {
          resolve({});
        }
      });
    });
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };

  const server: Server = createServer(async (req, res) => {
    const key = req.headers["idempotency-key"] as string | undefined;
    const url = new URL(req.url ?? "/", "http://x");
    requests.push({ method: req.method ?? "", path: url.pathname, key });
    if (req.method === "GET" && url.pathname.startsWith("/v1/operations/")) {
      const found = stored.get(decodeURIComponent(url.pathname.slice("/v1/operations/".length)));
      return found ? send(res, 200, found) : send(res, 404, { error: { message: "no such operation" } });
    }
    const kind = ({ "/v1/charges": "charge", "/v1/refunds": "refund", "/v1/mints": "mint" } as const)[url.pathname];
    if (req.method !== "POST" || !kind) return send(res, 404, { error: { message: "not found" } });
    const body = await readJson(req);
    if (!key) return send(res, 400, { error: { message: "Idempotency-Key header is required" } });
    const params = JSON.stringify(body);
    const replay = stored.get(key);
    if (replay && replay.body !== params) {
      return send(res, 400, {
        error: { type: "idempotency_error", message: "Keys for idempotent requests can only be used with the same parameters they were first used with." },
      });
    }
    if (replay) return send(res, replay.status, replay.response, { "idempotent-replayed": "true" });
    if (running.has(key))
      return send(res, 409, { error: { type: "idempotency_error", message: "There is currently another in-progress request using this Idempotent Key." } });
    if (failing.n > 0) {
      failing.n--;
      return send(res, failing.status, { error: { message: `scripted ${failing.status}` } });
    }
    const decide = (status: number, response: Record<string, unknown>) => {
      stored.set(key, { status, response, body: params });
      return send(res, status, response);
    };
    if (body.payment_method === "pm_card_declined") return decide(402, { error: { message: "Your card was declined.", code: "card_declined" } });
    if (kind === "refund") {
      const charge = effects.find((e) => e.kind === "charge" && e.id === body.charge);
      if (!charge)
        return decide(404, { error: { type: "invalid_request_error", code: "resource_missing", message: `No such charge: '${String(body.charge)}'` } });
      const left = Number(charge.body.amount) - (refunded.get(charge.id) ?? 0);
      if (Number(body.amount) > left)
        return decide(400, {
          error: { type: "invalid_request_error", message: `Refund amount (${Number(body.amount)}) is greater than unrefunded amount on charge (${left})` },
        });
      refunded.set(charge.id, (refunded.get(charge.id) ?? 0) + Number(body.amount));
    }
    const id = `${kind === "charge" ? "ch" : kind === "refund" ? "re" : "mint"}_fake_${++counter}`;
    effects.push({ kind, key, body, id });
    const answer: Stored = { status: 200, response: { id, object: kind, status: "succeeded", ...body }, body: params };
    if (delaying.n > 0) {
      // The effect happened; the request is still running for `ms`: the key is in progress meanwhile.
      delaying.n--;
      running.add(key);
      await new Promise((r) => setTimeout(r, delaying.ms));
      running.delete(key);
    }
    stored.set(key, answer);
    if (losing > 0) {
      losing--;
      req.socket.destroy();
      return;
    }
    send(res, answer.status, answer.response);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    effects,
    requests,
    failNext: (n, status) => (failing = { n, status }),
    delayNext: (n, ms) => (delaying = { n, ms }),
    loseAnswerNext: (n) => (losing = n),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
