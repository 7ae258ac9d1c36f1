/** Job types: built-in and registered, with their queue, producers, workers and payload schema. */
import { useQuery } from "@connectrpc/connect-query";
import { QueueService } from "../../../gen/jobs/v1/queue_service_pb.js";
import { ErrorBox, Json, Loading } from "../components/common.js";

export function JobTypesPage() {
  const types = useQuery(QueueService.method.listJobTypes, { pageSize: 100 });
  if (types.error) return <ErrorBox error={types.error} />;
  if (!types.data) return <Loading what="job types" />;
  return (
    <>
      <h1>Job types</h1>
      <p className="muted">Register your own with RegisterJobType (README, “Your own job types and workers”).</p>
      {types.data.jobTypes.map((t) => (
        <details key={t.name}>
          <summary>
            <strong>{t.name}</strong> in {t.queue} {t.builtIn ? <span className="badge">built in</span> : <span className="badge ok">registered</span>}
            {t.description && <span className="muted"> · {t.description}</span>}
          </summary>
          {!t.builtIn && (
            <p>
              Producers: {t.producers.length ? t.producers.join(", ") : "admins only"} · Workers: {t.workers.length ? t.workers.join(", ") : "admins only"}
            </p>
          )}
          <Json value={t.payloadSchema} label="payload schema" />
        </details>
      ))}
    </>
  );
}
