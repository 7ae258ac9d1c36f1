/** Small pieces every page uses: times, JSON, states, errors, empty states. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type ReactNode, useEffect, useState } from "react";
import { JobState } from "../../../gen/jobs/v1/job_pb.js";
import { describeError } from "../api.js";
import { absoluteTime, relativeTime } from "../lib/format.js";
import type { StreamStatus } from "../streams.js";

/** A time, relative ("3 minutes ago"), absolute on hover and for screen readers; kept current. */
export function Time({ at }: { at: Timestamp | Date | undefined }) {
  const [, tick] = useState(0);
  useEffect(() => {
    const t = setInterval(() => tick((n) => n + 1), 5000);
    return () => clearInterval(t);
  }, []);
  if (!at) return <span className="muted">–</span>;
  const date = at instanceof Date ? at : timestampDate(at);
  return (
    <time dateTime={date.toISOString()} title={absoluteTime(date)}>
      {relativeTime(date)}
    </time>
  );
}

/** Formatted JSON, selectable. */
export function Json({ value, label }: { value: unknown; label: string }) {
  if (value === undefined || value === null) return <p className="muted">No {label}.</p>;
  return (
    <pre className="json" data-label={label}>
      {JSON.stringify(value, null, 2)}
    </pre>
  );
}

export function StateBadge({ state }: { state: JobState }) {
  const name = JobState[state] ?? "UNKNOWN";
  return <span className={`badge state-${name.toLowerCase()}`}>{name.toLowerCase()}</span>;
}

export function ErrorBox({ error, action }: { error: unknown; action?: ReactNode }) {
  return (
    <div className="error" role="alert">
      <p>{describeError(error)}</p>
      {action}
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" aria-busy="true">
      Loading {what}…
    </p>
  );
}

/** Whether a stream is live, reconnecting, or gave up. */
export function LiveIndicator({ status }: { status: StreamStatus }) {
  const text =
    status.state === "live"
      ? "live"
      : status.state === "connecting"
        ? "connecting…"
        : status.state === "retrying"
          ? `reconnecting (${status.error})`
          : status.state === "ended"
            ? "ended"
            : `stopped: ${status.error}`;
  return (
    <span className={`live live-${status.state}`} role="status">
      {text}
    </span>
  );
}
