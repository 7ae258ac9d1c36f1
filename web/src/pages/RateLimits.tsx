import { type FormEvent, useState } from "react";
import { RateLimitScope } from "../../../gen/jobs/v1/monitoring_service_pb.js";
import { Empty, ErrorBox, Loading, Time } from "../components/common.js";
import { formatDuration } from "../lib/format.js";
import { useRateLimits } from "../rate-limits.js";
import { useIsAdmin } from "../session.js";

const SCOPES: [RateLimitScope, string, string][] = [
  [RateLimitScope.JOB_TYPE, "job type", "jobs of the type that start"],
  [RateLimitScope.QUEUE, "queue", "jobs of the queue that start"],
  [RateLimitScope.API_PRINCIPAL, "API principal", "calls of the token's principal (over it: RESOURCE_EXHAUSTED)"],
];
const scopeName = (s: RateLimitScope) => SCOPES.find(([x]) => x === s)?.[1] ?? "unknown";

export function RateLimitsPage() {
  const admin = useIsAdmin();
  const { limits, set, remove, outcome } = useRateLimits();
  const [scope, setScope] = useState(RateLimitScope.JOB_TYPE);
  const [key, setKey] = useState("");
  const [limit, setLimit] = useState("10");
  const [per, setPer] = useState("1");
  const submit = (e: FormEvent) => {
    e.preventDefault();
    set.mutate({ rateLimit: { scope, key: key.trim(), limit: Number(limit), interval: { seconds: BigInt(Number(per) || 1) } } });
  };
  return (
    <>
      <h1>Rate limits</h1>
      <p className="muted">{SCOPES.map(([, name, what]) => `${name}: ${what}`).join(" · ")}</p>
      {outcome && <p role="status">{outcome}</p>}
      {admin && (
        <form className="filters" onSubmit={submit} aria-label="Set a rate limit">
          <label>
            Scope
            <select value={scope} onChange={(e) => setScope(Number(e.target.value) as RateLimitScope)}>
              {SCOPES.map(([s, name]) => (
                <option key={s} value={s}>
                  {name}
                </option>
              ))}
            </select>
          </label>
          <label>
            Key
            <input
              value={key}
              onChange={(e) => setKey(e.target.value)}
              required
              placeholder={scope === RateLimitScope.API_PRINCIPAL ? "checkout" : "email:send"}
            />
          </label>
          <label>
            Limit
            <input type="number" min={1} max={1_000_000} value={limit} onChange={(e) => setLimit(e.target.value)} required />
          </label>
          <label>
            Per seconds
            <input type="number" min={1} max={86_400} value={per} onChange={(e) => setPer(e.target.value)} required />
          </label>
          <button type="submit" disabled={set.isPending}>
            Set limit
          </button>
        </form>
      )}
      {limits.error ? (
        <ErrorBox error={limits.error} />
      ) : !limits.data ? (
        <Loading what="rate limits" />
      ) : limits.data.rateLimits.length === 0 ? (
        <Empty>No rate limits: jobs start as fast as workers take them, and principals call as often as they like.</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Scope</th>
              <th scope="col">Key</th>
              <th scope="col">Limit</th>
              <th scope="col">Set</th>
              {admin && <th scope="col">Action</th>}
            </tr>
          </thead>
          <tbody>
            {limits.data.rateLimits.map((l) => (
              <tr key={`${l.scope}:${l.key}`}>
                <td>{scopeName(l.scope)}</td>
                <td>
                  <code>{l.key}</code>
                </td>
                <td>
                  {l.limit} per {l.interval ? formatDuration(Number(l.interval.seconds) * 1000) : "–"}
                </td>
                <td>
                  by {l.updatedBy} <Time at={l.updatedAt} />
                </td>
                {admin && (
                  <td>
                    <button
                      type="button"
                      className="danger"
                      aria-label={`Remove the limit on ${l.key}`}
                      onClick={() => remove.mutate({ scope: l.scope, key: l.key })}
                    >
                      Remove
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
