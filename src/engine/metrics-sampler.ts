/**
 * One metrics sampler per replica for every WatchMetrics stream: it ticks every 250 ms while someone
 * listens, takes at most one snapshot per tick (whatever the number of streams), and hands it to the
 * streams whose interval has come.
 */
import type { Logger } from "../logger.js";
import type { Metrics, MetricsView } from "./metrics.js";

/** The sampler's tick, which is also the shortest interval a stream may ask for. */
export const SAMPLER_TICK_MS = 250;
/** The window of a streamed snapshot. */
export const STREAM_WINDOW_SECONDS = 60;

interface Listener {
  intervalMs: number;
  due: number;
  deliver(view: MetricsView): void;
}

/** Starts the sampler (idle until the first subscriber). */
export function createMetricsSampler(metrics: Metrics, logger: Logger) {
  const listeners = new Set<Listener>();
  let timer: NodeJS.Timeout | undefined;
  let sampling = false;
  let samples = 0;

  async function tick(): Promise<void> {
    if (sampling) return;
    const now = Date.now();
    const due = [...listeners].filter((l) => l.due <= now);
    if (due.length === 0) return;
    sampling = true;
    try {
      const view = await metrics.snapshot(STREAM_WINDOW_SECONDS);
      samples++;
      for (const l of due) {
        // The next delivery an interval after this one (after now, if this one was late).
        l.due = l.due + l.intervalMs > now ? l.due + l.intervalMs : now + l.intervalMs;
        l.deliver(view);
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "metrics sample failed");
    } finally {
      sampling = false;
    }
  }

  return {
    /** Calls `deliver` with a snapshot now and then every `intervalMs`; returns the unsubscribe. */
    subscribe(intervalMs: number, deliver: (view: MetricsView) => void): () => void {
      const l: Listener = { intervalMs, due: 0, deliver };
      listeners.add(l);
      if (!timer) {
        timer = setInterval(() => void tick(), SAMPLER_TICK_MS);
        timer.unref();
      }
      void tick();
      return () => {
        listeners.delete(l);
        if (listeners.size === 0 && timer) {
          clearInterval(timer);
          timer = undefined;
        }
      };
    },
    /** Snapshots taken so far (tests: one per tick, not one per stream). */
    samples: () => samples,
    stop() {
      listeners.clear();
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}

export type MetricsSampler = ReturnType<typeof createMetricsSampler>;
