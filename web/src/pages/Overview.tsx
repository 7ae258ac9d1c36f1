/**
 * Overview: every queue's numbers live from one WatchMetrics stream (per tab), a chart of each
 * queue's depth and running jobs over the last ten minutes, component health and firing alerts.
 */
import { create } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { useQuery } from "@connectrpc/connect-query";
import { useState } from "react";
import { Link } from "wouter";
import { AlertState, HealthStatus, MonitoringService, type QueueMetrics, QueueMetricsSchema } from "../../../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../../../gen/jobs/v1/queue_service_pb.js";
import { clients } from "../api.js";
import { Empty, ErrorBox, LiveIndicator, Loading, Time } from "../components/common.js";
import { Sparkline } from "../components/Sparkline.js";
import { failureRate, formatCount, formatDuration, formatRate } from "../lib/format.js";
import { columns, pushSample, type Sample } from "../lib/series.js";
import { useStream } from "../streams.js";

const WINDOW_MS = 10 * 60_000;

function Health() {
  const health = useQuery(MonitoringService.method.getHealth, {}, { refetchInterval: 5000 });
  if (health.error) return <ErrorBox error={health.error} />;
  if (!health.data) return <Loading what="health" />;
  return (
    <ul className="health" aria-label="Component health">
      {health.data.components.map((c) => (
        <li key={c.name} className={`health-${HealthStatus[c.status].toLowerCase()}`}>
          <strong>{c.name.replace("_", " ")}</strong> {HealthStatus[c.status].toLowerCase()}
          <span className="muted"> · {c.detail}</span>
        </li>
      ))}
    </ul>
  );
}

function FiringAlerts() {
  const alerts = useQuery(MonitoringService.method.listAlerts, { state: AlertState.FIRING, pageSize: 20 }, { refetchInterval: 10_000 });
  if (alerts.error) return <ErrorBox error={alerts.error} />;
  if (!alerts.data) return <Loading what="alerts" />;
  if (alerts.data.alerts.length === 0) return <p className="muted">No alert is firing.</p>;
  return (
    <ul className="alerts">
      {alerts.data.alerts.map((a) => (
        <li key={a.id}>
          <strong>{a.ruleName}</strong> {a.summary} <Time at={a.firedAt} /> · <Link href="/alerts">acknowledge</Link>
        </li>
      ))}
    </ul>
  );
}

export function OverviewPage() {
  const [queues, setQueues] = useState<QueueMetrics[] | undefined>();
  const [series, setSeries] = useState<Record<string, Sample[]>>({});
  const [capturedAt, setCapturedAt] = useState<Date | undefined>();
  // Until the stream's first snapshot (a read of the window's activity, slower on a big database),
  // the queues' counts from ListQueues (kept by the database, cheap) make the page useful at once.
  const listed = useQuery(QueueService.method.listQueues, { pageSize: 100 }, { enabled: !queues });
  const live = queues !== undefined;
  const rows =
    queues ??
    listed.data?.queues.map((q) =>
      create(QueueMetricsSchema, {
        queue: q.name,
        paused: q.paused,
        depth: q.stats?.queued ?? 0n,
        active: q.stats?.active ?? 0n,
        scheduled: (q.stats?.delayed ?? 0n) + (q.stats?.retrying ?? 0n),
        completed: q.stats?.completed ?? 0n,
        failed: q.stats?.failed ?? 0n,
        oldestQueuedAge: q.stats?.oldestQueuedAge,
      }),
    );
  const status = useStream(
    "overview",
    (call) => clients.monitoring.watchMetrics({ interval: { seconds: 1n } }, call),
    (m) => {
      const snapshot = m.snapshot;
      if (!snapshot) return;
      const t = snapshot.capturedAt ? timestampDate(snapshot.capturedAt).getTime() : Date.now();
      setCapturedAt(new Date(t));
      setQueues(snapshot.queues);
      setSeries((prev) => {
        const next: Record<string, Sample[]> = {};
        for (const q of snapshot.queues)
          next[q.queue] = pushSample(
            prev[q.queue] ?? [],
            { t, depth: Number(q.depth), active: Number(q.active), completedPerSecond: q.completedPerSecond, failedPerSecond: q.failedPerSecond },
            WINDOW_MS,
          );
        return next;
      });
    },
  );
  return (
    <>
      <h1>Overview</h1>
      <section aria-labelledby="queues-h">
        <h2 id="queues-h">
          Queues <LiveIndicator status={status} />
          {capturedAt && (
            <span className="muted small">
              {" "}
              as of <Time at={capturedAt} />
            </span>
          )}
        </h2>
        {status.state === "failed" && <ErrorBox error={new Error(status.error)} />}
        {!rows ? (
          <Loading what="queue metrics" />
        ) : rows.length === 0 ? (
          <Empty>No queues yet.</Empty>
        ) : (
          <table className="queues">
            <thead>
              <tr>
                <th scope="col">Queue</th>
                <th scope="col">State</th>
                <th scope="col" className="num">
                  Ready
                </th>
                <th scope="col" className="num">
                  Running
                </th>
                <th scope="col" className="num">
                  Scheduled
                </th>
                <th scope="col" className="num">
                  Completed/s
                </th>
                <th scope="col" className="num">
                  Failed/s
                </th>
                <th scope="col" className="num">
                  Failure rate
                </th>
                <th scope="col" className="num">
                  Oldest ready
                </th>
                <th scope="col">Ready and running, 10 min</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((q) => (
                <tr key={q.queue} data-queue={q.queue}>
                  <th scope="row">
                    <Link href={`/queues/${q.queue}`}>{q.queue}</Link>
                  </th>
                  <td>{q.paused ? <span className="badge paused">paused</span> : <span className="badge ok">running</span>}</td>
                  <td className="num" data-field="depth">
                    {formatCount(q.depth)}
                  </td>
                  <td className="num" data-field="active">
                    {formatCount(q.active)}
                  </td>
                  <td className="num">{formatCount(q.scheduled)}</td>
                  <td className="num" data-field="completed-rate">
                    {live ? formatRate(q.completedPerSecond) : "…"}
                  </td>
                  <td className="num">{live ? formatRate(q.failedPerSecond) : "…"}</td>
                  <td className="num">{failureRate(Number(q.completed), Number(q.failed))}</td>
                  <td className="num">
                    {q.depth > 0n && q.oldestQueuedAge ? formatDuration(Number(q.oldestQueuedAge.seconds) * 1000 + q.oldestQueuedAge.nanos / 1e6) : "–"}
                  </td>
                  <td className="chart">
                    <Sparkline
                      data={columns(series[q.queue] ?? [], ["depth", "active"])}
                      labels={["ready", "running"]}
                      title={`${q.queue}: ready and running jobs`}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <p className="muted small">Numbers over the last minute; completed and failed counts in the window: hover a queue for details on its page.</p>
      </section>
      <div className="columns">
        <section aria-labelledby="health-h">
          <h2 id="health-h">Health</h2>
          <Health />
        </section>
        <section aria-labelledby="alerts-h">
          <h2 id="alerts-h">Firing alerts</h2>
          <FiringAlerts />
        </section>
      </div>
    </>
  );
}
