/** Alerts: firing and acknowledged alerts (admins acknowledge), and the rules that raise them. */
import { createConnectQueryKey, useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { AlertMetric, AlertState, MonitoringService } from "../../../gen/jobs/v1/monitoring_service_pb.js";
import { describeError } from "../api.js";
import { Empty, ErrorBox, Loading, Time } from "../components/common.js";
import { useIsAdmin } from "../session.js";

export function AlertsPage() {
  const admin = useIsAdmin();
  const client = useQueryClient();
  const alerts = useQuery(MonitoringService.method.listAlerts, { pageSize: 100 }, { refetchInterval: 5000 });
  const rules = useQuery(MonitoringService.method.listAlertRules, { pageSize: 100 });
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
        {rules.error ? (
          <ErrorBox error={rules.error} />
        ) : !rules.data ? (
          <Loading what="rules" />
        ) : rules.data.rules.length === 0 ? (
          <Empty>No alert rules. Create one with CreateAlertRule (docs/api.md).</Empty>
        ) : (
          <ul>
            {rules.data.rules.map((r) => (
              <li key={r.id}>
                <strong>{r.name}</strong>: {AlertMetric[r.metric].toLowerCase().replaceAll("_", " ")} of {r.jobType || r.queue || "every queue"} over{" "}
                {r.threshold}
                {r.enabled === false && <span className="badge paused"> disabled</span>}
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}
