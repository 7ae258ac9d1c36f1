/** Schedules: each recurring job with its cron, next and last run (linked to its job); admins pause, resume and delete. */
import { createConnectQueryKey, useMutation, useQuery } from "@connectrpc/connect-query";
import { useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link } from "wouter";
import { ScheduleService } from "../../../gen/jobs/v1/schedule_service_pb.js";
import { describeError } from "../api.js";
import { Empty, ErrorBox, Loading, Time } from "../components/common.js";
import { useIsAdmin } from "../session.js";

export function SchedulesPage() {
  const admin = useIsAdmin();
  const client = useQueryClient();
  const [outcome, setOutcome] = useState<string | undefined>();
  const list = useQuery(ScheduleService.method.listSchedules, { pageSize: 100 }, { refetchInterval: 2000 });
  const done = (text: string) => () => {
    setOutcome(text);
    void client.invalidateQueries({ queryKey: createConnectQueryKey({ schema: ScheduleService.method.listSchedules, cardinality: undefined }) });
  };
  const onError = (e: unknown) => setOutcome(describeError(e));
  const pause = useMutation(ScheduleService.method.pauseSchedule, { onSuccess: done("Paused: no job is added until it is resumed."), onError });
  const resume = useMutation(ScheduleService.method.resumeSchedule, { onSuccess: done("Resumed from the next tick."), onError });
  const remove = useMutation(ScheduleService.method.deleteSchedule, { onSuccess: done("Deleted; the jobs it added stay."), onError });
  return (
    <>
      <h1>Schedules</h1>
      {outcome && <p role="status">{outcome}</p>}
      {list.error ? (
        <ErrorBox error={list.error} />
      ) : !list.data ? (
        <Loading what="schedules" />
      ) : list.data.schedules.length === 0 ? (
        <Empty>No schedules. Create one with CreateSchedule (README, “Schedules”).</Empty>
      ) : (
        <table>
          <thead>
            <tr>
              <th scope="col">Schedule</th>
              <th scope="col">Job type</th>
              <th scope="col">When</th>
              <th scope="col">Next run</th>
              <th scope="col">Last run</th>
              <th scope="col">State</th>
              {admin && <th scope="col">Actions</th>}
            </tr>
          </thead>
          <tbody>
            {list.data.schedules.map((s) => (
              <tr key={s.name} data-schedule={s.name}>
                <th scope="row">{s.name}</th>
                <td>{s.type}</td>
                <td>
                  <code>{s.cron}</code> {s.timeZone || "UTC"}
                </td>
                <td>{s.paused ? "–" : <Time at={s.nextRunAt} />}</td>
                <td>{s.lastJobId ? <Link href={`/jobs/${s.lastJobId}`}>{<Time at={s.lastRunAt} />}</Link> : "never"}</td>
                <td>{s.paused ? <span className="badge paused">paused</span> : <span className="badge ok">active</span>}</td>
                {admin && (
                  <td className="actions">
                    {s.paused ? (
                      <button type="button" onClick={() => resume.mutate({ name: s.name })}>
                        Resume
                      </button>
                    ) : (
                      <button type="button" onClick={() => pause.mutate({ name: s.name })}>
                        Pause
                      </button>
                    )}
                    <button
                      type="button"
                      className="danger"
                      onClick={() => {
                        if (window.confirm(`Delete the schedule ${s.name}?`)) remove.mutate({ name: s.name });
                      }}
                    >
                      Delete
                    </button>
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
