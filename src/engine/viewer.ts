/**
 * Who is asking: a service principal sees only the jobs it added; an admin sees every job.
 */

/** The caller of a read. */
export interface Viewer {
  /** The principal's name. */
  readonly name: string;
  /** An admin sees every job. */
  readonly admin: boolean;
}

/** The principal filter a query needs for `viewer`: none for an admin. */
export function ownerFilter(viewer: Viewer): string | undefined {
  return viewer.admin ? undefined : viewer.name;
}
