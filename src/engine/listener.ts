/**
 * One LISTEN connection per replica, for every wake-up the service needs: job events (streams),
 * runnable work (workers), cancel requests (running handlers), pauses and limits, and catalog changes. It reconnects by itself; after every
 * (re)connection it tells its subscribers to resynchronise, since notifications sent while it was
 * away are lost (readers then read from their cursors, workers poll).
 */
import pg from "pg";
import { qualified } from "../db/sql.js";
import type { Logger } from "../logger.js";

/** Reconnect backoff. */
export const LISTENER_RETRY_MIN_MS = 100;
export const LISTENER_RETRY_MAX_MS = 5000;
/** A silent connection drop is noticed by this probe. */
export const LISTENER_PROBE_INTERVAL_MS = 5000;
export const LISTENER_PROBE_TIMEOUT_MS = 3000;

type Handler<T> = (value: T) => void;

/** The wake-ups a replica receives. */
export interface Listener {
  /** New job events were committed. */
  onEvents(handler: Handler<void>): () => void;
  /** A job of this pg-boss queue became runnable. */
  onWork(handler: Handler<string>): () => void;
  /** This job was asked to cancel. */
  onCancel(handler: Handler<string>): () => void;
  /** A pause or a rate limit changed (payload: what changed, e.g. `pause:money`). */
  onControl(handler: Handler<string>): () => void;
  /** A queue or job type of the catalog changed. */
  onCatalog(handler: Handler<void>): () => void;
  /** The connection was (re)established: anything sent meanwhile was lost. */
  onResync(handler: Handler<void>): () => void;
  /** Connection state changes (for health). */
  onStatus(handler: Handler<{ connected: boolean; detail: string }>): () => void;
  connected(): boolean;
  /** The backend pid of the current connection (tests terminate it). */
  backendPid(): number | undefined;
  stop(): Promise<void>;
}

export interface ListenerOptions {
  url: string;
  schema: string;
  logger: Logger;
}

/** Starts listening; resolves after the first connection (or keeps retrying in the background). */
export async function startListener(options: ListenerOptions): Promise<Listener> {
  const { logger } = options;
  const handlers = {
    events: new Set<Handler<void>>(),
    work: new Set<Handler<string>>(),
    cancel: new Set<Handler<string>>(),
    control: new Set<Handler<string>>(),
    catalog: new Set<Handler<void>>(),
    resync: new Set<Handler<void>>(),
    status: new Set<Handler<{ connected: boolean; detail: string }>>(),
  };
  const emit = <T>(set: Set<Handler<T>>, value: T) => {
    for (const h of set) {
      try {
        h(value);
      } catch (err) {
        logger.error({ err: (err as Error).message }, "listener subscriber failed");
      }
    }
  };
  let client: pg.Client | undefined;
  let pid: number | undefined;
  let stopped = false;
  let channels: { events: string; work: string; cancel: string; control: string; catalog: string } | undefined;
  let delay = LISTENER_RETRY_MIN_MS;
  let retryTimer: NodeJS.Timeout | undefined;
  let probeTimer: NodeJS.Timeout | undefined;

  const setStatus = (connected: boolean, detail: string) => emit(handlers.status, { connected, detail });

  const drop = (reason: string) => {
    if (!client) return;
    const dead = client;
    client = undefined;
    pid = undefined;
    if (probeTimer) clearInterval(probeTimer);
    dead.removeAllListeners();
    dead.on("error", () => {});
    void dead.end().catch(() => {});
    if (stopped) return;
    logger.warn({ reason }, "event listener disconnected; reconnecting");
    setStatus(false, `reconnecting: ${reason}`);
    retryTimer = setTimeout(() => void connect(), delay);
    delay = Math.min(delay * 2, LISTENER_RETRY_MAX_MS);
  };

  async function connect(): Promise<boolean> {
    if (stopped) return false;
    const c = new pg.Client({ connectionString: options.url, application_name: "queue-service:listener", keepAlive: true, keepAliveInitialDelayMillis: 5000 });
    c.on("error", (err) => drop(err.message));
    c.on("end", () => drop("connection ended"));
    try {
      await c.connect();
      if (!channels) {
        const s = (f: string) => `${qualified(options.schema, f)}()`;
        const { rows } = await c.query<{ events: string; work: string; cancel: string; control: string; catalog: string }>(
          `SELECT ${s("event_channel")} AS events, ${s("work_channel")} AS work, ${s("cancel_channel")} AS cancel, ${s("control_channel")} AS control,
             ${s("catalog_channel")} AS catalog`,
        );
        channels = rows[0]!;
      }
      for (const channel of Object.values(channels)) await c.query(`LISTEN ${c.escapeIdentifier(channel)}`);
      const { rows } = await c.query<{ pid: number }>("SELECT pg_backend_pid() AS pid");
      if (stopped) {
        await c.end().catch(() => {});
        return false;
      }
      client = c;
      pid = rows[0]!.pid;
      delay = LISTENER_RETRY_MIN_MS;
      c.on("notification", (n) => {
        if (n.channel === channels!.events) emit(handlers.events, undefined);
        else if (n.channel === channels!.work && n.payload) emit(handlers.work, n.payload);
        else if (n.channel === channels!.cancel && n.payload) emit(handlers.cancel, n.payload);
        else if (n.channel === channels!.control && n.payload) emit(handlers.control, n.payload);
        else if (n.channel === channels!.catalog) emit(handlers.catalog, undefined);
      });
      probeTimer = setInterval(() => {
        const probing = client;
        if (!probing) return;
        const timeout = setTimeout(() => drop("probe timed out"), LISTENER_PROBE_TIMEOUT_MS);
        probing.query("SELECT 1").then(
          () => clearTimeout(timeout),
          (err: Error) => {
            clearTimeout(timeout);
            drop(err.message);
          },
        );
      }, LISTENER_PROBE_INTERVAL_MS);
      probeTimer.unref();
      setStatus(true, "listening");
      emit(handlers.resync, undefined);
      return true;
    } catch (err) {
      c.removeAllListeners();
      c.on("error", () => {});
      await c.end().catch(() => {});
      if (stopped) return false;
      setStatus(false, `cannot connect: ${(err as Error).message}`);
      retryTimer = setTimeout(() => void connect(), delay);
      delay = Math.min(delay * 2, LISTENER_RETRY_MAX_MS);
      return false;
    }
  }

  await connect();
  const subscribe =
    <T>(set: Set<Handler<T>>) =>
    (h: Handler<T>) => {
      set.add(h);
      return () => void set.delete(h);
    };
  return {
    onEvents: subscribe(handlers.events),
    onWork: subscribe(handlers.work),
    onCancel: subscribe(handlers.cancel),
    onControl: subscribe(handlers.control),
    onCatalog: subscribe(handlers.catalog),
    onResync: subscribe(handlers.resync),
    onStatus: subscribe(handlers.status),
    connected: () => client !== undefined,
    backendPid: () => pid,
    async stop() {
      stopped = true;
      if (retryTimer) clearTimeout(retryTimer);
      if (probeTimer) clearInterval(probeTimer);
      const c = client;
      client = undefined;
      if (c) {
        c.removeAllListeners();
        c.on("error", () => {});
        await c.end().catch(() => {});
      }
    },
  };
}
