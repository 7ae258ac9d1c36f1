/**
 * jobs.v1.MonitoringService handlers. RPCs not implemented here answer UNIMPLEMENTED naming
 * themselves.
 */
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { HealthStatus, MonitoringService } from "../../gen/jobs/v1/monitoring_service_pb.js";
import type { ComponentStatus, HealthMonitor } from "../health.js";

export interface MonitoringServiceDeps {
  health: HealthMonitor;
}

const statusOf: Record<ComponentStatus, HealthStatus> = {
  healthy: HealthStatus.HEALTHY,
  degraded: HealthStatus.DEGRADED,
  unhealthy: HealthStatus.UNHEALTHY,
};

/** The MonitoringService implementation. */
export function monitoringService(deps: MonitoringServiceDeps): Partial<ServiceImpl<typeof MonitoringService>> {
  return {
    getHealth() {
      return {
        status: statusOf[deps.health.overall()],
        components: deps.health.components().map((c) => ({ name: c.name, status: statusOf[c.status], detail: c.detail, checkedAt: timestampFromDate(c.checkedAt) })),
      };
    },
  };
}

/** Registers MonitoringService. */
export function registerMonitoringService(router: ConnectRouter, deps: MonitoringServiceDeps): void {
  router.service(MonitoringService, monitoringService(deps));
}
