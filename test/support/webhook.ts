/**
 * An HTTP server that records the webhooks it receives (alert notifications).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface WebhookServer {
  readonly url: string;
  readonly host: string;
  readonly received: { path: string; body: any }[];
  close(): Promise<void>;
}

export async function startWebhookServer(): Promise<WebhookServer> {
  const received: { path: string; body: any }[] = [];
  const server = createServer((req, res) => {
    let data = "";
    req.on("data", (c) => (data += c));
    req.on("end", () => {
      received.push({ path: req.url ?? "", body: JSON.parse(data || "null") });
      res.writeHead(204);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hooks/alerts`,
    host: `127.0.0.1:${port}`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
