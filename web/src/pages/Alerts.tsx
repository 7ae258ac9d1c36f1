/** Alerts: firing and acknowledged alerts (admins acknowledge), and the rules that raise them. */
import { createConnectQueryKey, useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useState } from "react";
import { AlertMetric, AlertState, MonitoringService } from "../../../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../../../gen/jobs/v1/queue_service_pb.js";
import { describeError } from "../api.js";
import { Empty, ErrorBox, Loading, Time } from "../components/common.js";
import { useIsAdmin } from "../session.js";

const METRICS: [AlertMetric, string, string][] = [
  [AlertMetric.QUEUE_DEPTH, "queue depth", "jobs ready"],
  [AlertMetric.FAILURE_RATE, "failure rate", "0 to 1 over 10 min"],
  [AlertMetric.DEAD_LETTER_COUNT, "dead letters", "count"],
  [AlertMetric.OLDEST_QUEUED_AGE, "oldest ready job", "seconds"],
  [AlertMetric.RUN_TIME_PERCENTILE, "run time p99", "seconds over 10 min"],
];

/** A new rule (admins): a metric of a queue over a threshold, notifying a webhook and/or email. */
function NewRule({ onDone }: { onDone: (text: string) => void }) {
  const queues = useQuery(QueueService.method.listQueues, { pageSize: 100 });
  const [name, setName] = useState("");
  const [metric, setMetric] = useState(AlertMetric.QUEUE_DEPTH);
  const [queue, setQueue] = useState("");
  const [threshold, setThreshold] = useState("1000");
  const [webhook, setWebhook] = useState("");
  const [email, setEmail] = useState("");
  const create = useMutation(MonitoringService.method.createAlertRule, {
    onSuccess: (r) => onDone(`Rule “${r.rule?.name}” created: one replica evaluates it from now on.`),
    onError: (e) => onDone(describeError(e)),
  });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const windowed = metric === AlertMetric.FAILURE_RATE || metric === AlertMetric.RUN_TIME_PERCENTILE;
    create.mutate({
      rule: {
        name,
        metric,
        queue,
        threshold: Number(threshold),
        percentile: metric === AlertMetric.RUN_TIME_PERCENTILE ? 99 : 0,
        window: windowed ? { seconds: 600n } : undefined,
        targets: [
          ...(webhook ? [{ target: { case: "webhook" as const, value: { url: webhook } } }] : []),
          ...(email ? [{ target: { case: "email" as const, value: { to: email.split(",").map((a) => a.trim()) } } }] : []),
        ],
      },
    });
  };
  return (
    <form className="filters" onSubmit={submit} aria-label="New alert rule">
      <label>
        Name
        <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} />
      </label>
      <label>
        Metric
        <select value={metric} onChange={(e) => setMetric(Number(e.target.value) as AlertMetric)}>
          {METRICS.map(([m, label]) => (
            <option key={m} value={m}>
              {label}
            </option>
          ))}
        </select>
      </label>
      <label>
        Queue
        <select value={queue} onChange={(e) => setQueue(e.target.value)} required>
          <option value="">choose…</option>
          {queues.data?.queues.map((q) => (
            <option key={q.name}>{q.name}</option>
          ))}
        </select>
      </label>
      <label>
        Above ({METRICS.find(([m]) => m === metric)?.[2]})
        <input type="number" step="any" min={0} value={threshold} onChange={(e) => setThreshold(e.target.value)} required />
      </label>
      <label>
        Webhook URL (optional)
        <input type="url" value={webhook} onChange={(e) => setWebhook(e.target.value)} placeholder="https://hooks.example/…" />
      </label>
      <label>
        Email to (optional, comma-separated)
        <input value={email} onChange={(e) => setEmail(e.target.value)} />
      </label>
      <button type="submit" disabled={create.isPending}>
        Create rule
      </button>
    </form>
  );
}

export function AlertsPage() {
  const admin = useIsAdmin();
  const client = useQueryClient();
  const alerts = useQuery(MonitoringService.method.listAlerts, { pageSize: 100 }, { refetchInterval: 5000 });
  const rules = useQuery(MonitoringService.method.listAlertRules, { pageSize: 100 });
  const [outcome, setOutcome] = useState<string | undefined>();
  const refreshRules = (text: string) => {
    setOutcome(text);
    void client.invalidateQueries({ queryKey: createConnectQueryKey({ schema: MonitoringService.method.listAlertRules, cardinality: undefined }) });
  };
  const update = useMutation(MonitoringService.method.updateAlertRule, {
    onSuccess: () => refreshRules("Rule updated."),
    onError: (e) => setOutcome(describeError(e)),
  });
  const remove = useMutation(MonitoringService.method.deleteAlertRule, {
    onSuccess: () => refreshRules("Rule deleted; its alerts are resolved."),
    onError: (e) => setOutcome(describeError(e)),
  });
  const ack = useMutation(MonitoringService.method.acknowledgeAlert, {
    onSettled: () =>
      void client.invalidateQueries({ queryKey: createConnectQueryKey({ schema: MonitoringService.method.listAlerts, cardinality: undefined }) }),
  });
  return (
    <>
      <h1>Alerts</h1>
      <section aria-labelledby="alerts-h">
        <h2 id="alerts-h">Alerts</h2>
        {ack.error && <p role="alert">{describeError(ack.error)}</p>}
        {alerts.error ? (
          <ErrorBox error={alerts.error} />
        ) : !alerts.data ? (
          <Loading what="alerts" />
        ) : alerts.data.alerts.length === 0 ? (
          <Empty>No alerts. Rules below raise them when a queue crosses a threshold.</Empty>
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">State</th>
                <th scope="col">Summary</th>
                <th scope="col">Fired</th>
                <th scope="col">Acknowledged</th>
                {admin && <th scope="col">Action</th>}
              </tr>
            </thead>
            <tbody>
              {alerts.data.alerts.map((a) => (
                <tr key={a.id}>
                  <td>{a.ruleName}</td>
                  <td>
                    <span className={`badge alert-${AlertState[a.state].toLowerCase()}`}>{AlertState[a.state].toLowerCase()}</span>
                  </td>
                  <td>{a.summary}</td>
                  <td>
                    <Time at={a.firedAt} />
                  </td>
                  <td>{a.acknowledgedBy ? <>by {a.acknowledgedBy}</> : "–"}</td>
                  {admin && (
                    <td>
                      {a.state === AlertState.FIRING && (
                        <button type="button" onClick={() => ack.mutate({ id: a.id })} disabled={ack.isPending}>
                          Acknowledge
                        </button>
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section aria-labelledby="rules-h">
        <h2 id="rules-h">Rules</h2>
        {outcome && <p role="status">{outcome}</p>}
        {admin && <NewRule onDone={refreshRules} />}
        {rules.error ? (
          <ErrorBox error={rules.error} />
        ) : !rules.data ? (
          <Loading what="rules" />
        ) : rules.data.rules.length === 0 ? (
          <Empty>No alert rules yet.{admin ? " Create one above." : " An admin creates them."}</Empty>
        ) : (
          <ul>
            {rules.data.rules.map((r) => (
              <li key={r.id}>
                <strong>{r.name}</strong>: {AlertMetric[r.metric].toLowerCase().replaceAll("_", " ")} of {r.jobType || r.queue || "every queue"} over{" "}
                {r.threshold}
                {r.enabled === false && <span className="badge paused"> disabled</span>}{" "}
                {admin && (
                  <>
                    <button
                      type="button"
                      onClick={() => update.mutate({ rule: { id: r.id, enabled: r.enabled === false }, updateMask: { paths: ["enabled"] } })}
                    >
                      {r.enabled === false ? "Enable" : "Disable"}
                    </button>{" "}
                    <button
                      type="button"
                      className="danger"
                      onClick={() => {
                        if (window.confirm(`Delete the rule “${r.name}”?`)) remove.mutate({ id: r.id });
                      }}
                    >
                      Delete
                    </button>
                  </>
                )}
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
