/**
 * Fails a test file that leaves a server, a socket (a pool's connections) or a child process open
 * after its own cleanup ran. Registered first, so its afterAll runs after the file's.
 */
import { afterAll } from "vitest";

const leakable = new Set([
  "TCPServerWrap",
  "TCPSocketWrap",
  "TCPWRAP",
  "TCPSERVERWRAP",
  "ProcessWrap",
  "PROCESSWRAP",
  "Http2Session",
  "HTTP2SESSION",
  "PipeServerWrap",
]);

function openHandles(): string[] {
  return process.getActiveResourcesInfo().filter((r) => leakable.has(r));
}

afterAll(async () => {
  const deadline = Date.now() + 3000;
  while (openHandles().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  const left = openHandles();
  if (left.length > 0) {
    const counts: Record<string, number> = {};
    for (const r of left) counts[r] = (counts[r] ?? 0) + 1;
    throw new Error(`test file leaked open handles: ${JSON.stringify(counts)} (close servers, pools, clients and child processes in afterAll)`);
  }
});
