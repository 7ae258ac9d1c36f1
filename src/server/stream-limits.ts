/**
 * Caps on open streams: per principal and in total, so no caller can hold the server's memory or
 * file descriptors. A stream over a cap is refused with RESOURCE_EXHAUSTED.
 */
import { ResourceExhaustedError } from "../engine/errors.js";

/** An open stream's place, returned when it ends. */
export interface StreamLease {
  release(): void;
}

/** The stream caps of a replica. */
export class StreamLimits {
  #total = 0;
  readonly #byPrincipal = new Map<string, number>();
  constructor(readonly maxTotal: number, readonly maxPerPrincipal: number) {}

  /** Takes a place for a stream of `principal`, or throws RESOURCE_EXHAUSTED. */
  open(principal: string): StreamLease {
    const mine = this.#byPrincipal.get(principal) ?? 0;
    if (this.#total >= this.maxTotal) throw new ResourceExhaustedError(`the server has its maximum of ${this.maxTotal} open streams; retry later or on another replica`, 1000);
    if (mine >= this.maxPerPrincipal) throw new ResourceExhaustedError(`${principal} has its maximum of ${this.maxPerPrincipal} open streams`, 1000);
    this.#total++;
    this.#byPrincipal.set(principal, mine + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#total--;
        const left = (this.#byPrincipal.get(principal) ?? 1) - 1;
        if (left > 0) this.#byPrincipal.set(principal, left);
        else this.#byPrincipal.delete(principal);
      },
    };
  }

  /** Streams open now. */
  get count(): number {
    return this.#total;
  }
}
