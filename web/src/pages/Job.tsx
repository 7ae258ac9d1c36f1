/**
 * One job: every field, payload and result as JSON, the last error, progress, its timeline (from its
 * fields, then live from WatchJob), lineage links, and retry or cancel for admins.
 */
import type { Duration } from "@bufbuild/protobuf/wkt";
import { useMutation, useQuery } from "@connectrpc/connect-query";
import { useEffect, useState } from "react";
import { Link } from "wouter";
import { type Job, JobState, ParentFailurePolicy } from "../../../gen/jobs/v1/job_pb.js";
import { JobService } from "../../../gen/jobs/v1/job_service_pb.js";
import { clients, describeError } from "../api.js";
import { ErrorBox, Json, LiveIndicator, Loading, StateBadge, Time } from "../components/common.js";
import { formatDuration } from "../lib/format.js";
import { addEvent, isFinal, type TimelineEntry, timelineFromJob } from "../lib/timeline.js";
import { useIsAdmin } from "../session.js";
import { useStream } from "../streams.js";

const duration = (d: Duration | undefined) => (d ? formatDuration(Number(d.seconds) * 1000 + d.nanos / 1e6) : "–");

function Fields({ job }: { job: Job }) {
  const rows: [string, React.ReactNode][] = [
    ["Id", <code key="id">{job.id}</code>],
    ["Type", job.type],
    [
      "Queue",
      <Link key="q" href={`/queues/${job.queue}`}>
        {job.queue}
      </Link>,
    ],
    ["State", <StateBadge key="s" state={job.state} />],
    ["Attempt", `${job.retryCount + 1} of ${job.retryLimit + 1}`],
    ["Priority", job.priority],
    ["Created", <Time key="c" at={job.createdAt} />],
    ["Runnable from", <Time key="a" at={job.startAfter} />],
    ["Started", <Time key="st" at={job.startedAt} />],
    ["Finished", <Time key="f" at={job.completedAt} />],
    ["Added by", job.createdBy || "–"],
    ["Idempotency key", job.idempotencyKey ? <code key="k">{job.idempotencyKey}</code> : "–"],
    ["Concurrency key", job.concurrencyKey ? <code key="ck">{job.concurrencyKey}</code> : "–"],
    ["Retry delay", `${duration(job.retryDelay)}${job.retryBackoff ? ", doubling" : ""}`],
    ["Expires after", duration(job.expireIn)],
    ["Cancel requested", job.cancelRequested ? "yes" : "no"],
  ];
  return (
    <dl className="fields">
      {rows.map(([k, v]) => (
        <div key={k}>
          <dt>{k}</dt>
          <dd>{v}</dd>
        </div>
      ))}
    </dl>
  );
}

function Lineage({ job }: { job: Job }) {
  const links: [string, string][] = [];
  if (job.rootJobId && job.rootJobId !== job.id) links.push(["First job of this line", job.rootJobId]);
  if (job.sourceJobId) links.push(["The job that failed (this is its dead letter)", job.sourceJobId]);
  if (job.deadLetterJobId) links.push(["Its dead letter", job.deadLetterJobId]);
  const onFailure = job.onParentFailure === ParentFailurePolicy.RUN ? "this job runs even if it fails" : "this job is cancelled if it fails";
  for (const parent of job.dependsOn) links.push([`Parent (${onFailure})`, parent]);
  if (links.length === 0) return <p className="muted">This job has no related jobs.</p>;
  return (
    <ul>
      {links.map(([label, id]) => (
        <li key={`${label}:${id}`}>
          {label}: <Link href={`/jobs/${id}`}>{id}</Link>
        </li>
      ))}
    </ul>
  );
}

export function JobPage({ id }: { id: string }) {
  const admin = useIsAdmin();
  const fetched = useQuery(JobService.method.getJob, { id });
  const [job, setJob] = useState<Job | undefined>();
  const [events, setEvents] = useState<TimelineEntry[]>([]);
  const [outcome, setOutcome] = useState<string | undefined>();
  const [watchKey, setWatchKey] = useState(0);
  useEffect(() => {
    if (fetched.data?.job) setJob(fetched.data.job);
  }, [fetched.data]);
  const status = useStream(
    `${id}:${watchKey}`,
    (call) => clients.jobs.watchJob({ id }, call),
    (m) => {
      const event = m.event;
      if (!event?.job) return;
      setJob(event.job);
      setEvents((prev) => addEvent(prev, event));
    },
  );
  const afterCommand = (verb: string) => ({
    onSuccess: (r: { job?: Job }) => {
      if (r.job) setJob(r.job);
      setOutcome(`${verb}.`);
      setWatchKey((k) => k + 1); // follow the job again (its watch ended with the final event)
    },
    onError: (e: unknown) => setOutcome(describeError(e)),
  });
  const retry = useMutation(JobService.method.retryJob, afterCommand("Retried: the job runs again"));
  const cancel = useMutation(JobService.method.cancelJob, afterCommand("Cancel requested"));

  if (fetched.error) return <ErrorBox error={fetched.error} action={<Link href="/jobs">Back to the jobs</Link>} />;
  if (!job) return <Loading what="the job" />;
  const final = isFinal(job.state);
  const timeline = [
    ...timelineFromJob(job).filter((e) => !events.some((l) => l.type === e.type && Math.abs(l.at.getTime() - e.at.getTime()) < 1000)),
    ...events,
  ].sort((a, b) => a.at.getTime() - b.at.getTime());
  return (
    <>
      <h1>
        {job.type} <code className="small">{job.id}</code> <StateBadge state={job.state} /> <LiveIndicator status={status} />
      </h1>
      {admin && (
        <div className="actions">
          <button
            type="button"
            disabled={!(job.state === JobState.FAILED || job.state === JobState.CANCELLED) || retry.isPending}
            onClick={() => retry.mutate({ id })}
          >
            Retry
          </button>
          <button type="button" className="danger" disabled={final || job.cancelRequested || cancel.isPending} onClick={() => cancel.mutate({ id })}>
            Cancel
          </button>
        </div>
      )}
      {outcome && <p role="status">{outcome}</p>}
      {job.lastError && (
        <section className="last-error" aria-labelledby="err-h">
          <h2 id="err-h">Last error</h2>
          <p className="error-text" data-testid="last-error">
            {job.lastError.reason && <strong>{job.lastError.reason}: </strong>}
            {job.lastError.message}
          </p>
          <p className="muted small">
            attempt {job.lastError.attempt}, {job.lastError.retryable ? "retryable" : "permanent"}, <Time at={job.lastError.occurredAt} />
          </p>
        </section>
      )}
      {job.progress && (
        <section aria-labelledby="progress-h">
          <h2 id="progress-h">Progress</h2>
          <progress max={100} value={job.progress.percent} aria-label="progress">
            {job.progress.percent}%
          </progress>{" "}
          {job.progress.percent}% {job.progress.message} <Time at={job.progress.updatedAt} />
        </section>
      )}
      <div className="columns">
        <section aria-labelledby="fields-h">
          <h2 id="fields-h">Fields</h2>
          <Fields job={job} />
          <h2>Related jobs</h2>
          <Lineage job={job} />
        </section>
        <section aria-labelledby="timeline-h">
          <h2 id="timeline-h">Timeline</h2>
          <ol className="timeline" data-testid="timeline">
            {timeline.map((e) => (
              <li key={e.key} className={`event-${e.label.toLowerCase().replaceAll(" ", "-")}`}>
                <strong>{e.label}</strong> <Time at={e.at} /> <span className="muted">attempt {e.attempt}</span>
                {e.detail && <div className="detail">{e.detail}</div>}
              </li>
            ))}
          </ol>
        </section>
      </div>
      <div className="columns">
        <section aria-labelledby="payload-h">
          <h2 id="payload-h">Payload</h2>
          <Json value={job.payload} label="payload" />
        </section>
        <section aria-labelledby="result-h">
          <h2 id="result-h">Result</h2>
          <Json value={job.result} label="result" />
        </section>
      </div>
    </>
  );
}
