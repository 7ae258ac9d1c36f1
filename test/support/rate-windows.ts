/** Checking a processing rate limit from the starts it let through. */

/** How long after taking its tokens a fetch's start may be recorded (a pooled connection's wait). */
const TOKEN_TO_FETCH_MS = 250;

/** In any span of k seconds a bucket of `limit` tokens refilled at `limit`/s allows limit * (k + 1) starts. */
export function worstWindow(starts: number[], limit: number, seconds: number): { within: number; allowed: number } {
  let worst = 0;
  let lo = 0;
  for (let hi = 0; hi < starts.length; hi++) {
    while (starts[hi]! - starts[lo]! >= seconds * 1000) lo++;
    worst = Math.max(worst, hi - lo + 1);
  }
  // A start is recorded at its fetch's transaction start, a little after the tokens were taken (the
  // fetch waits for a pooled connection, which under this load takes up to tens of milliseconds), so
  // starts bunch a little relative to their tokens: allow the tokens of TOKEN_TO_FETCH_MS more. (In
  // CI once: 604 starts in a 5 s window against a bucket bound of 601.) A limit broken by a replica
  // taking its own tokens would show three times the bound.
  return { within: worst, allowed: limit * (seconds + 1) + Math.ceil((limit * TOKEN_TO_FETCH_MS) / 1000) };
}
