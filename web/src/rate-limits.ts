/** Rate limits as the Queue and Rate limits pages both use them: the list, set and remove, and what happened. */
import { createConnectQueryKey, useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { MonitoringService } from "../../gen/jobs/v1/monitoring_service_pb.js";
import { describeError } from "./api.js";

export function useRateLimits() {
  const client = useQueryClient();
  const limits = useQuery(MonitoringService.method.listRateLimits, { pageSize: 100 });
  const [outcome, setOutcome] = useState<string | undefined>();
  const done = (text: string) => () => {
    setOutcome(text);
    void client.invalidateQueries({ queryKey: createConnectQueryKey({ schema: MonitoringService.method.listRateLimits, cardinality: undefined }) });
  };
  const onError = (e: unknown) => setOutcome(describeError(e));
  const set = useMutation(MonitoringService.method.setRateLimit, { onSuccess: done("Limit set: every replica holds it within a second."), onError });
  const remove = useMutation(MonitoringService.method.deleteRateLimit, { onSuccess: done("Limit removed."), onError });
  return { limits, set, remove, outcome };
}
