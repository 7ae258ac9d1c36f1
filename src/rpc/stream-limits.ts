/**
 * Caps on open streams: per principal and in total, so no caller can hold the server's memory or
 * file descriptors. A stream over a cap is refused with RESOURCE_EXHAUSTED.
 */
import { ResourceExhaustedError } from "../engine/index.js";

/** An open stream's place, returned when it ends. */
export interface StreamLease {
  /** Gives the place back, and runs what `also` added; once. */
  release(): void;
  /** Runs `cleanup` when the place is given back (at once if it already was). */
  also(cleanup: () => void): void;
}

/** The stream caps of a replica. */
export class StreamLimits {
  #total = 0;
  readonly #byPrincipal = new Map<string, number>();
  constructor(
    readonly maxTotal: number,
    readonly maxPerPrincipal: number,
  ) {}

  /**
   * Takes a place for a stream of `principal`, or throws RESOURCE_EXHAUSTED. With `signal` (the
   * call's), the place is also given back as soon as the call is aborted, not only when the stream's
   * generator ends: connect-node resumes a generator only from its response writer, and a writer
   * whose HTTP/1.1 connection closed under a write waits for a "drain" that never comes, so the
   * generator's `finally` would never run and the place (and its subscription) would be lost.
   */
  open(principal: string, signal?: AbortSignal): StreamLease {
    const mine = this.#byPrincipal.get(principal) ?? 0;
    if (this.#total >= this.maxTotal)
      throw new ResourceExhaustedError(`the server has its maximum of ${this.maxTotal} open streams; retry later or on another replica`, 1000);
    if (mine >= this.maxPerPrincipal) throw new ResourceExhaustedError(`${principal} has its maximum of ${this.maxPerPrincipal} open streams`, 1000);
    this.#total++;
    this.#byPrincipal.set(principal, mine + 1);
    let released = false;
    const cleanups: (() => void)[] = [];
    const release = () => {
      if (released) return;
      released = true;
      signal?.removeEventListener("abort", release);
      this.#total--;
      const left = (this.#byPrincipal.get(principal) ?? 1) - 1;
      if (left > 0) this.#byPrincipal.set(principal, left);
      else this.#byPrincipal.delete(principal);
      for (const cleanup of cleanups.splice(0)) cleanup();
    };
    if (signal?.aborted) release();
    else signal?.addEventListener("abort", release, { once: true });
    return {
      release,
      also: (cleanup) => {
        if (released) cleanup();
        else cleanups.push(cleanup);
      },
    };
  }

  /** Streams open now. */
  get count(): number {
    return this.#total;
  }
}
