/**
 * Coalescing reads: concurrent callers share one read, but a caller is never handed the result of a
 * read that started before it called (a read already under way is not joined: the next one is, and
 * it starts as soon as the current one ends). So an answer always reflects every change committed
 * before the call, and at most one read of each kind runs at a time.
 */

/** Wraps `read` so that concurrent callers share reads without ever getting a stale one. */
export function coalescing<T>(read: () => Promise<T>): () => Promise<T> {
  let current: Promise<T> | undefined;
  let next: Promise<T> | undefined;
  return () => {
    if (!current) {
      current = read().finally(() => (current = undefined));
      return current;
    }
    next ??= current
      .catch(() => undefined)
      .then(() => {
        next = undefined;
        current = read().finally(() => (current = undefined));
        return current;
      });
    return next;
  };
}
