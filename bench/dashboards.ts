/**
 * Open dashboards, as the service sees them: each tab of the Overview holds one WatchMetrics stream
 * (Connect over HTTP/1.1, as a browser on plain http speaks it) and polls GetHealth every 5 s and
 * ListAlerts every 10 s. No browser runs here: the bench measures what the tabs cost the service,
 * not what Chromium costs the machine.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AlertState, MonitoringService } from "../gen/jobs/v1/monitoring_service_pb.js";
import { type BenchService, sleep } from "./harness.js";

/** Opens `tabs` dashboards on `svc`; `stop()` closes them and says how many snapshots they got. */
export function openDashboards(svc: BenchService, tabs: number) {
  const stop = new AbortController();
  let snapshots = 0;
  const tab = async () => {
    const monitoring = createClient(
      MonitoringService,
      createConnectTransport({
        baseUrl: svc.baseUrl,
        httpVersion: "1.1",
        useBinaryFormat: true,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${svc.token}`);
            return next(req);
          },
        ],
      }),
    );
    const poll = async (everyMs: number, call: () => Promise<unknown>) => {
      while (!stop.signal.aborted) {
        await call().catch(() => undefined);
        await sleep(everyMs);
      }
    };
    const stream = (async () => {
      try {
        for await (const _ of monitoring.watchMetrics({ interval: { seconds: 1n } }, { signal: stop.signal })) snapshots++;
      } catch {
        // closed by stop()
      }
    })();
    await Promise.all([
      stream,
      poll(5000, () => monitoring.getHealth({})),
      poll(10_000, () => monitoring.listAlerts({ state: AlertState.FIRING, pageSize: 20 })),
    ]);
  };
  const running = Promise.all(Array.from({ length: tabs }, tab));
  return {
    async stop() {
      stop.abort();
      await running;
      return { snapshots };
    },
  };
}
