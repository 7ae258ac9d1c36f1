/**
 * Server streams in React: open on mount, reopen with backoff after an error (a replica restarting
 * ends its streams with UNAVAILABLE), close on unmount. One stream per use; the Overview uses one
 * WatchMetrics stream for every queue.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useRef, useState } from "react";

export type StreamStatus =
  | { state: "connecting" }
  | { state: "live" }
  | { state: "retrying"; error: string }
  | { state: "ended" }
  | { state: "failed"; error: string };

/** Call options for a stream: its abort signal, and `onHeader` (the stream is open before its first message). */
export interface StreamCall {
  signal: AbortSignal;
  onHeader: () => void;
}

/** Follows `open(call)` while `key` stays the same; `onMessage` sees each message. */
export function useStream<T>(key: string | undefined, open: (call: StreamCall) => AsyncIterable<T>, onMessage: (m: T) => void): StreamStatus {
  const [status, setStatus] = useState<StreamStatus>({ state: "connecting" });
  const handler = useRef(onMessage);
  handler.current = onMessage;
  const opener = useRef(open);
  opener.current = open;
  useEffect(() => {
    if (key === undefined) return;
    const controller = new AbortController();
    (async () => {
      for (let failures = 0; !controller.signal.aborted; ) {
        setStatus({ state: "connecting" });
        const onHeader = () => setStatus({ state: "live" });
        // The service sends a stream's headers with its first message, and refuses one (auth, caps,
        // bad filters) at once: a stream still open a second later is following.
        const opened = setTimeout(onHeader, 1000);
        try {
          for await (const m of opener.current({ signal: controller.signal, onHeader })) {
            failures = 0;
            setStatus({ state: "live" });
            handler.current(m);
          }
          if (!controller.signal.aborted) setStatus({ state: "ended" });
          return;
        } catch (err) {
          if (controller.signal.aborted) return;
          const e = ConnectError.from(err);
          if (e.code === Code.Unauthenticated || e.code === Code.PermissionDenied || e.code === Code.NotFound || e.code === Code.InvalidArgument) {
            setStatus({ state: "failed", error: e.rawMessage });
            return;
          }
          setStatus({ state: "retrying", error: e.rawMessage });
        } finally {
          clearTimeout(opened);
        }
        await new Promise((r) => setTimeout(r, Math.min(10_000, 500 * 2 ** failures++)));
      }
    })();
    return () => controller.abort();
  }, [key]);
  return status;
}
