/**
 * A queue: per job type counts, pause and resume, its policy, its rate limits, and its dead letters
 * with bulk redrive and purge (admins).
 */
import type { Duration } from "@bufbuild/protobuf/wkt";
import { createConnectQueryKey, useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "wouter";
import { RateLimitScope } from "../../../gen/jobs/v1/monitoring_service_pb.js";
import { QueueService } from "../../../gen/jobs/v1/queue_service_pb.js";
import { describeError } from "../api.js";
import { Empty, ErrorBox, Loading, Time } from "../components/common.js";
import { formatCount, formatDuration } from "../lib/format.js";
import { useRateLimits } from "../rate-limits.js";
import { useIsAdmin } from "../session.js";

const COUNT_HEADINGS = ["Ready", "Delayed", "Running", "Retrying", "Waiting for parents", "Dead letters", "Completed", "Failed", "Cancelled"];

const seconds = (d: Duration | undefined) => (d ? formatDuration(Number(d.seconds) * 1000 + d.nanos / 1e6) : "–");

function DeadLetters({ queue }: { queue: string }) {
  const admin = useIsAdmin();
  const client = useQueryClient();
  const [pageToken, setPageToken] = useState("");
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [outcome, setOutcome] = useState<string | undefined>();
  const list = useQuery(QueueService.method.listDeadLetters, { queue, pageSize: 50, pageToken }, { refetchInterval: 5000 });
  const refresh = () => {
    setSelected(new Set());
    void client.invalidateQueries({ queryKey: createConnectQueryKey({ schema: QueueService, cardinality: undefined }) });
  };
  const redrive = useMutation(QueueService.method.redriveDeadLetters, {
    onSuccess: (r) => {
      setOutcome(`Redriven: ${r.redrivenCount} job${r.redrivenCount === 1 ? "" : "s"} back in their queues.`);
      refresh();
    },
    onError: (e) => setOutcome(describeError(e)),
  });
  const purge = useMutation(QueueService.method.purgeDeadLetters, {
    onSuccess: (r) => {
      setOutcome(`Purged: ${r.purgedCount} dead letter${r.purgedCount === 1 ? "" : "s"} discarded.`);
      refresh();
    },
    onError: (e) => setOutcome(describeError(e)),
  });
  if (list.error) return <ErrorBox error={list.error} />;
  if (!list.data) return <Loading what="dead letters" />;
  const jobs = list.data.jobs;
  const all = jobs.length > 0 && jobs.every((j) => selected.has(j.id));
  const toggle = (id: string) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  return (
    <>
      {outcome && <p role="status">{outcome}</p>}
      {jobs.length === 0 ? (
        <Empty>No dead letters: every failed job of this queue was redriven or purged, or none failed.</Empty>
      ) : (
        <>
          {admin && (
            <div className="actions">
              <button type="button" disabled={selected.size === 0 || redrive.isPending} onClick={() => redrive.mutate({ queue, jobIds: [...selected] })}>
                Redrive {selected.size || ""} selected
              </button>
              <button
                type="button"
                className="danger"
                disabled={selected.size === 0 || purge.isPending}
                onClick={() => {
                  if (window.confirm(`Discard ${selected.size} dead letter(s) for good?`)) purge.mutate({ queue, jobIds: [...selected] });
                }}
              >
                Purge {selected.size || ""} selected
              </button>
            </div>
          )}
          <table>
            <thead>
              <tr>
                {admin && (
                  <th scope="col">
                    <input
                      type="checkbox"
                      aria-label="Select all dead letters on this page"
                      checked={all}
                      onChange={() => setSelected(all ? new Set() : new Set(jobs.map((j) => j.id)))}
                    />
                  </th>
                )}
                <th scope="col">Dead letter</th>
                <th scope="col">Type</th>
                <th scope="col">Last error</th>
                <th scope="col">Dead-lettered</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j.id}>
                  {admin && (
                    <td>
                      <input type="checkbox" aria-label={`Select ${j.id}`} checked={selected.has(j.id)} onChange={() => toggle(j.id)} />
                    </td>
                  )}
                  <td>
                    <Link href={`/jobs/${j.id}`}>{j.id.slice(0, 8)}</Link>
                  </td>
                  <td>{j.type}</td>
                  <td className="error-text">{j.lastError?.message ?? "–"}</td>
                  <td>
                    <Time at={j.createdAt} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          <div className="pager">
            {pageToken && (
              <button type="button" onClick={() => setPageToken("")}>
                First page
              </button>
            )}
            {list.data.nextPageToken && (
              <button type="button" onClick={() => setPageToken(list.data.nextPageToken)}>
                Next page
              </button>
            )}
          </div>
        </>
      )}
    </>
  );
}

function RateLimits({ queue, types }: { queue: string; types: string[] }) {
  const admin = useIsAdmin();
  const { limits, set, remove, outcome } = useRateLimits();
  const [target, setTarget] = useState(queue);
  const [limit, setLimit] = useState("10");
  const [per, setPer] = useState("1");
  if (limits.error) return <ErrorBox error={limits.error} />;
  if (!limits.data) return <Loading what="rate limits" />;
  const scopeOf = (key: string) => (key === queue ? RateLimitScope.QUEUE : RateLimitScope.JOB_TYPE);
  const mine = limits.data.rateLimits.filter(
    (l) => (l.scope === RateLimitScope.QUEUE && l.key === queue) || (l.scope === RateLimitScope.JOB_TYPE && types.includes(l.key)),
  );
  return (
    <>
      {mine.length === 0 ? (
        <p className="muted">No processing rate limit on this queue or its job types.</p>
      ) : (
        <ul>
          {mine.map((l) => (
            <li key={`${l.scope}:${l.key}`}>
              <strong>{l.key}</strong>: {l.limit} per {seconds(l.interval)} <span className="muted">(set by {l.updatedBy})</span>{" "}
              {admin && (
                <button
                  type="button"
                  className="danger"
                  onClick={() => remove.mutate({ scope: l.scope, key: l.key })}
                  aria-label={`Remove the limit on ${l.key}`}
                >
                  Remove
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
      {admin && (
        <form
          className="filters"
          aria-label="Set a processing rate limit"
          onSubmit={(e) => {
            e.preventDefault();
            set.mutate({ rateLimit: { scope: scopeOf(target), key: target, limit: Number(limit), interval: { seconds: BigInt(Number(per) || 1) } } });
          }}
        >
          <label>
            On
            <select value={target} onChange={(e) => setTarget(e.target.value)}>
              <option value={queue}>the whole queue</option>
              {types.map((t) => (
                <option key={t}>{t}</option>
              ))}
            </select>
          </label>
          <label>
            Starts
            <input type="number" min={1} max={1_000_000} value={limit} onChange={(e) => setLimit(e.target.value)} required />
          </label>
          <label>
            per seconds
            <input type="number" min={1} max={86_400} value={per} onChange={(e) => setPer(e.target.value)} required />
          </label>
          <button type="submit" disabled={set.isPending}>
            Set limit
          </button>
        </form>
      )}
      {outcome && <p role="status">{outcome}</p>}
    </>
  );
}

export function QueuePage({ name }: { name: string }) {
  const admin = useIsAdmin();
  const client = useQueryClient();
  const queues = useQuery(QueueService.method.listQueues, { pageSize: 100 }, { refetchInterval: 3000 });
  const stats = useQuery(QueueService.method.getQueueStats, { name }, { refetchInterval: 2000 });
  const [outcome, setOutcome] = useState<string | undefined>();
  const onDone = () => void client.invalidateQueries({ queryKey: createConnectQueryKey({ schema: QueueService, cardinality: undefined }) });
  const pause = useMutation(QueueService.method.pauseQueue, {
    onSuccess: () => {
      setOutcome("Paused on every replica: no job of it starts until resumed.");
      onDone();
    },
    onError: (e) => setOutcome(describeError(e)),
  });
  const resume = useMutation(QueueService.method.resumeQueue, {
    onSuccess: () => {
      setOutcome("Resumed.");
      onDone();
    },
    onError: (e) => setOutcome(describeError(e)),
  });
  const queue = queues.data?.queues.find((q) => q.name === name);
  if (queues.error) return <ErrorBox error={queues.error} />;
  if (!queues.data) return <Loading what="the queue" />;
  if (!queue)
    return (
      <Empty>
        There is no queue named {name}. <Link href="/">Back to the overview</Link>.
      </Empty>
    );
  const s = stats.data?.stats;
  const p = queue.policy;
  return (
    <>
      <h1>
        Queue {name} {queue.paused ? <span className="badge paused">paused</span> : <span className="badge ok">running</span>}
      </h1>
      {queue.description && <p>{queue.description}</p>}
      {admin ? (
        <div className="actions">
          {queue.paused ? (
            <button type="button" onClick={() => resume.mutate({ name })} disabled={resume.isPending}>
              Resume queue
            </button>
          ) : (
            <button type="button" onClick={() => pause.mutate({ name })} disabled={pause.isPending}>
              Pause queue
            </button>
          )}
          {queue.paused && queue.pausedAt && (
            <span className="muted">
              paused <Time at={queue.pausedAt} />
            </span>
          )}
        </div>
      ) : (
        <p className="muted small">Pausing, redriving and purging need an admin token.</p>
      )}
      {outcome && <p role="status">{outcome}</p>}
      <section aria-labelledby="types-h">
        <h2 id="types-h">Job types</h2>
        {stats.error ? (
          <ErrorBox error={stats.error} />
        ) : !s ? (
          <Loading what="counts" />
        ) : (
          <table>
            <thead>
              <tr>
                <th scope="col">Type</th>
                {COUNT_HEADINGS.map((h) => (
                  <th key={h} scope="col" className="num">
                    {h}
                  </th>
                ))}
                <th scope="col">Jobs</th>
              </tr>
            </thead>
            <tbody>
              {s.jobTypes.map((t) => (
                <tr key={t.type} data-type={t.type}>
                  <th scope="row">{t.type}</th>
                  {[t.queued, t.delayed, t.active, t.retrying, t.waiting, t.deadLettered, t.completed, t.failed, t.cancelled].map((n, i) => (
                    <td key={COUNT_HEADINGS[i]} className="num">
                      {formatCount(n)}
                    </td>
                  ))}
                  <td>
                    <Link href={`/jobs?queue=${name}&type=${encodeURIComponent(t.type)}`}>list</Link>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        {s && (
          <p className="muted small">
            Completed, failed and cancelled over the last {seconds(s.window)}; counted <Time at={s.capturedAt} />.
          </p>
        )}
      </section>
      <div className="columns">
        <section aria-labelledby="policy-h">
          <h2 id="policy-h">Policy</h2>
          {p && (
            <dl className="policy">
              <dt>Retries</dt>
              <dd>
                {p.retryLimit}, {seconds(p.retryDelay)} apart{p.retryBackoff ? `, doubling up to ${seconds(p.retryDelayMax)}` : ""}
              </dd>
              <dt>Expires after</dt>
              <dd>{seconds(p.expireIn)} running</dd>
              <dt>Concurrency</dt>
              <dd>{p.concurrency} per replica</dd>
              <dt>Dead letters kept</dt>
              <dd>{seconds(p.deadLetterRetention)}</dd>
            </dl>
          )}
        </section>
        <section aria-labelledby="limits-h">
          <h2 id="limits-h">Rate limits</h2>
          <RateLimits queue={name} types={queue.jobTypes} />
        </section>
      </div>
      <section aria-labelledby="dl-h">
        <h2 id="dl-h">Dead letters</h2>
        <DeadLetters queue={name} />
      </section>
    </>
  );
}
