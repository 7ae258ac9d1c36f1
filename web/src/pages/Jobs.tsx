/**
 * Jobs: search by id (opens the job), idempotency key, queue, type, state and time range; pages by
 * page token; follows WatchJobs so the page refreshes as jobs change; admins retry or cancel the
 * selected jobs.
 */
import { createConnectQueryKey, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { type FormEvent, useEffect, useMemo, useRef, useState } from "react";
import { Link, useLocation, useSearch } from "wouter";
import { JobState } from "../../../gen/jobs/v1/job_pb.js";
import { JobService } from "../../../gen/jobs/v1/job_service_pb.js";
import { QueueService } from "../../../gen/jobs/v1/queue_service_pb.js";
import { clients, describeError } from "../api.js";
import { Empty, ErrorBox, LiveIndicator, Loading, StateBadge, Time } from "../components/common.js";
import { EMPTY_FILTERS, filterProblems, filtersFromSearch, filtersToSearch, isJobId, type JobFilters, listRequest, STATE_NAMES } from "../lib/job-filters.js";
import { useIsAdmin } from "../session.js";
import { useStream } from "../streams.js";

function FilterForm({ initial, onApply }: { initial: JobFilters; onApply: (f: JobFilters) => void }) {
  const [f, setF] = useState(initial);
  const [, navigate] = useLocation();
  const [lookup, setLookup] = useState("");
  useEffect(() => setF(initial), [initial]);
  const queues = useQuery(QueueService.method.listQueues, { pageSize: 100 });
  const types = useQuery(QueueService.method.listJobTypes, { pageSize: 100 });
  const problems = filterProblems(f);
  const set = (patch: Partial<JobFilters>) => setF({ ...f, ...patch });
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (problems.length === 0) onApply(f);
  };
  return (
    <>
      <form
        className="lookup"
        aria-label="Open a job by id"
        onSubmit={(e) => {
          e.preventDefault();
          if (isJobId(lookup)) navigate(`/jobs/${lookup.trim()}`);
        }}
      >
        <label htmlFor="job-id">Job id</label>
        <input id="job-id" value={lookup} onChange={(e) => setLookup(e.target.value)} placeholder="8c6f…-…" spellCheck={false} />
        <button type="submit" disabled={!isJobId(lookup)}>
          Open
        </button>
      </form>
      <form className="filters" onSubmit={submit} aria-label="Filter jobs">
        <label>
          Queue
          <select value={f.queue} onChange={(e) => set({ queue: e.target.value, type: "" })}>
            <option value="">any</option>
            {queues.data?.queues.map((q) => (
              <option key={q.name}>{q.name}</option>
            ))}
          </select>
        </label>
        <label>
          Type
          <select value={f.type} onChange={(e) => set({ type: e.target.value })}>
            <option value="">any</option>
            {types.data?.jobTypes
              .filter((t) => !f.queue || t.queue === f.queue)
              .map((t) => (
                <option key={t.name}>{t.name}</option>
              ))}
          </select>
        </label>
        <label>
          State
          <select value={f.state} onChange={(e) => set({ state: e.target.value })}>
            <option value="">any</option>
            {STATE_NAMES.map((s) => (
              <option key={s} value={s}>
                {s.toLowerCase()}
              </option>
            ))}
          </select>
        </label>
        <label>
          Idempotency key
          <input value={f.idempotencyKey} onChange={(e) => set({ idempotencyKey: e.target.value })} spellCheck={false} />
        </label>
        <label>
          Created after
          <input type="datetime-local" value={f.createdAfter} onChange={(e) => set({ createdAfter: e.target.value })} />
        </label>
        <label>
          Created before
          <input type="datetime-local" value={f.createdBefore} onChange={(e) => set({ createdBefore: e.target.value })} />
        </label>
        <label className="check">
          <input type="checkbox" checked={f.deadLetters} onChange={(e) => set({ deadLetters: e.target.checked })} /> dead letters too
        </label>
        <button type="submit" disabled={problems.length > 0}>
          Search
        </button>
        <button type="button" onClick={() => onApply(EMPTY_FILTERS)}>
          Clear
        </button>
      </form>
      {problems.length > 0 && (
        <ul className="error" role="alert">
          {problems.map((p) => (
            <li key={p}>{p}</li>
          ))}
        </ul>
      )}
    </>
  );
}

export function JobsPage() {
  const search = useSearch();
  const [, navigate] = useLocation();
  const filters = useMemo(() => filtersFromSearch(search), [search]);
  const admin = useIsAdmin();
  const client = useQueryClient();
  const [pages, setPages] = useState<string[]>([""]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [outcome, setOutcome] = useState<string | undefined>();
  // A new search starts at its first page with nothing selected.
  // biome-ignore lint/correctness/useExhaustiveDependencies: runs when the search changes, which is what it is for.
  useEffect(() => {
    setPages([""]);
    setSelected(new Set());
  }, [search]);
  const pageToken = pages.at(-1)!;
  const list = useQuery(JobService.method.listJobs, listRequest(filters, pageToken));
  // Live: any change to a job these filters cover refreshes the page (at most once a second).
  const pending = useRef<number | undefined>(undefined);
  const status = useStream(
    `jobs:${filters.queue}:${filters.type}:${filters.state}`,
    (call) =>
      clients.jobs.watchJobs(
        { queue: filters.queue, types: filters.type ? [filters.type] : [], states: filters.state ? [JobState[filters.state as keyof typeof JobState]] : [] },
        call,
      ),
    () => {
      if (pending.current !== undefined) return;
      pending.current = window.setTimeout(() => {
        pending.current = undefined;
        void client.invalidateQueries({ queryKey: createConnectQueryKey({ schema: JobService.method.listJobs, cardinality: undefined }) });
      }, 1000);
    },
  );
  useEffect(() => () => window.clearTimeout(pending.current), []);

  const bulk = async (action: "retry" | "cancel") => {
    const ids = [...selected];
    const results = await Promise.allSettled(ids.map((id) => (action === "retry" ? clients.jobs.retryJob({ id }) : clients.jobs.cancelJob({ id }))));
    const failed = results.flatMap((r, i) => (r.status === "rejected" ? [`${ids[i]!.slice(0, 8)}: ${describeError(r.reason)}`] : []));
    setOutcome(
      `${action === "retry" ? "Retried" : "Cancelled"} ${ids.length - failed.length} of ${ids.length}.${failed.length ? ` Refused: ${failed.join("; ")}` : ""}`,
    );
    setSelected(new Set());
    void list.refetch();
  };

  const jobs = list.data?.jobs ?? [];
  const all = jobs.length > 0 && jobs.every((j) => selected.has(j.id));
  return (
    <>
      <h1>
        Jobs <LiveIndicator status={status} />
      </h1>
      <FilterForm initial={filters} onApply={(f) => navigate(`/jobs${filtersToSearch(f)}`)} />
      {outcome && <p role="status">{outcome}</p>}
      {admin && jobs.length > 0 && (
        <div className="actions">
          <button type="button" disabled={selected.size === 0} onClick={() => void bulk("retry")}>
            Retry {selected.size || ""} selected
          </button>
          <button type="button" className="danger" disabled={selected.size === 0} onClick={() => void bulk("cancel")}>
            Cancel {selected.size || ""} selected
          </button>
        </div>
      )}
      {list.error ? (
        <ErrorBox error={list.error} />
      ) : !list.data ? (
        <Loading what="jobs" />
      ) : jobs.length === 0 ? (
        <Empty>No job matches these filters. Widen the time range, or clear the filters.</Empty>
      ) : (
        <table className="jobs">
          <thead>
            <tr>
              {admin && (
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select all jobs on this page"
                    checked={all}
                    onChange={() => setSelected(all ? new Set() : new Set(jobs.map((j) => j.id)))}
                  />
                </th>
              )}
              <th scope="col">Job</th>
              <th scope="col">Type</th>
              <th scope="col">State</th>
              <th scope="col" className="num">
                Attempt
              </th>
              <th scope="col">Created</th>
              <th scope="col">By</th>
              <th scope="col">Last error</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((j) => (
              <tr key={j.id}>
                {admin && (
                  <td>
                    <input
                      type="checkbox"
                      aria-label={`Select ${j.id}`}
                      checked={selected.has(j.id)}
                      onChange={() => {
                        const next = new Set(selected);
                        if (next.has(j.id)) next.delete(j.id);
                        else next.add(j.id);
                        setSelected(next);
                      }}
                    />
                  </td>
                )}
                <td>
                  <Link href={`/jobs/${j.id}`}>{j.id.slice(0, 8)}</Link>
                  {j.deadLetter && <span className="badge paused"> dead letter</span>}
                </td>
                <td>{j.type}</td>
                <td>
                  <StateBadge state={j.state} />
                </td>
                <td className="num">
                  {j.retryCount + 1} of {j.retryLimit + 1}
                </td>
                <td>
                  <Time at={j.createdAt} />
                </td>
                <td>{j.createdBy}</td>
                <td className="error-text">{j.lastError?.message ?? ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="pager">
        {pages.length > 1 && (
          <button type="button" onClick={() => setPages(pages.slice(0, -1))}>
            Previous page
          </button>
        )}
        {list.data?.nextPageToken && (
          <button type="button" onClick={() => setPages([...pages, list.data!.nextPageToken])}>
            Next page
          </button>
        )}
      </div>
    </>
  );
}
