/**
 * The service's health: one status per component (database, engine, workers, event listener),
 * updated by the parts themselves and by a periodic database probe. GetHealth, grpc.health.v1 and
 * /readyz all read it.
 */
import { EventEmitter } from "node:events";

/** A component's status. */
export type ComponentStatus = "healthy" | "degraded" | "unhealthy";

/** One component's health. */
export interface ComponentHealth {
  readonly name: string;
  readonly status: ComponentStatus;
  readonly detail: string;
  readonly checkedAt: Date;
}

/** The components the service reports, in order. */
export const COMPONENTS = ["database", "engine", "workers", "event_listener"] as const;
export type ComponentName = (typeof COMPONENTS)[number];

/** Holds the components' health and tells listeners when the overall readiness changes. */
export class HealthMonitor {
  readonly #components = new Map<string, ComponentHealth>();
  readonly #events = new EventEmitter();
  #stopping = false;

  constructor(names: readonly string[] = COMPONENTS) {
    const now = new Date();
    for (const name of names) this.#components.set(name, { name, status: "unhealthy", detail: "starting", checkedAt: now });
    this.#events.setMaxListeners(0);
  }

  /** Records a component's status. */
  set(name: ComponentName | string, status: ComponentStatus, detail = ""): void {
    const before = this.ready();
    const previous = this.#components.get(name);
    this.#components.set(name, { name, status, detail, checkedAt: new Date() });
    if (previous?.status !== status || previous.detail !== detail) this.#events.emit("component", name);
    if (this.ready() !== before) this.#events.emit("readiness", this.ready());
  }

  /** Every component's health. */
  components(): ComponentHealth[] {
    return [...this.#components.values()];
  }

  /** The worst component status. */
  overall(): ComponentStatus {
    const statuses = this.components().map((c) => c.status);
    if (statuses.includes("unhealthy")) return "unhealthy";
    if (statuses.includes("degraded")) return "degraded";
    return "healthy";
  }

  /** Serving: no component is unhealthy and the service is not stopping. */
  ready(): boolean {
    return !this.#stopping && this.overall() !== "unhealthy";
  }

  /** Marks the service as stopping: not ready from now on. */
  stopping(): void {
    const before = this.ready();
    this.#stopping = true;
    if (before) this.#events.emit("readiness", false);
  }

  /** Calls `listener` whenever readiness changes; returns the unsubscribe function. */
  onReadinessChange(listener: (ready: boolean) => void): () => void {
    this.#events.on("readiness", listener);
    return () => this.#events.off("readiness", listener);
  }
}
