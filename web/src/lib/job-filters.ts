/**
 * The Jobs page's filters: kept in the URL (so a search can be shared and survives a reload) and
 * turned into ListJobs requests. A filter that cannot be asked of the API is said so before asking.
 */

import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { JobState } from "../../../gen/jobs/v1/job_pb.js";
import type { ListJobsRequestSchema } from "../../../gen/jobs/v1/job_service_pb.js";

export interface JobFilters {
  queue: string;
  type: string;
  /** A JobState name without its prefix ("COMPLETED"), or "". */
  state: string;
  idempotencyKey: string;
  /** `datetime-local` values ("2026-12-04T10:00"), local time, or "". */
  createdAfter: string;
  createdBefore: string;
  /** Dead letters too. */
  deadLetters: boolean;
}

export const EMPTY_FILTERS: JobFilters = { queue: "", type: "", state: "", idempotencyKey: "", createdAfter: "", createdBefore: "", deadLetters: false };

const JOB_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** Whether `text` is a job id (the search box opens the job instead of filtering). */
export const isJobId = (text: string) => JOB_ID.test(text.trim());

export const STATE_NAMES = ["WAITING", "CREATED", "RETRY", "ACTIVE", "COMPLETED", "FAILED", "CANCELLED"] as const;

export function filtersFromSearch(search: string): JobFilters {
  const p = new URLSearchParams(search);
  const state = (p.get("state") ?? "").toUpperCase();
  return {
    queue: p.get("queue") ?? "",
    type: p.get("type") ?? "",
    state: (STATE_NAMES as readonly string[]).includes(state) ? state : "",
    idempotencyKey: p.get("key") ?? "",
    createdAfter: p.get("after") ?? "",
    createdBefore: p.get("before") ?? "",
    deadLetters: p.get("dead") === "1",
  };
}

export function filtersToSearch(f: JobFilters): string {
  const p = new URLSearchParams();
  if (f.queue) p.set("queue", f.queue);
  if (f.type) p.set("type", f.type);
  if (f.state) p.set("state", f.state.toLowerCase());
  if (f.idempotencyKey) p.set("key", f.idempotencyKey);
  if (f.createdAfter) p.set("after", f.createdAfter);
  if (f.createdBefore) p.set("before", f.createdBefore);
  if (f.deadLetters) p.set("dead", "1");
  const s = p.toString();
  return s ? `?${s}` : "";
}

const dateOf = (local: string) => {
  const d = new Date(local);
  return Number.isNaN(d.getTime()) ? undefined : d;
};

/** What is wrong with the filters, in words a person can act on (empty: fine). */
export function filterProblems(f: JobFilters): string[] {
  const problems: string[] = [];
  const after = f.createdAfter ? dateOf(f.createdAfter) : undefined;
  const before = f.createdBefore ? dateOf(f.createdBefore) : undefined;
  if (f.createdAfter && !after) problems.push("“Created after” is not a date.");
  if (f.createdBefore && !before) problems.push("“Created before” is not a date.");
  if (after && before && after >= before) problems.push("“Created after” must be earlier than “Created before”.");
  if (f.idempotencyKey.length > 255) problems.push("An idempotency key has at most 255 characters.");
  return problems;
}

/** The ListJobs request for these filters and page. */
export function listRequest(f: JobFilters, pageToken = "", pageSize = 50): MessageInitShape<typeof ListJobsRequestSchema> {
  const after = f.createdAfter ? dateOf(f.createdAfter) : undefined;
  const before = f.createdBefore ? dateOf(f.createdBefore) : undefined;
  return {
    queue: f.queue,
    type: f.type,
    states: f.state ? [JobState[f.state as keyof typeof JobState]] : [],
    idempotencyKey: f.idempotencyKey,
    createdAfter: after ? timestampFromDate(after) : undefined,
    createdBefore: before ? timestampFromDate(before) : undefined,
    includeDeadLetters: f.deadLetters,
    pageSize,
    pageToken,
  };
}
