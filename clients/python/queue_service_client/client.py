"""QueueClient: add a job, read it back, and wait for it to finish, over gRPC with a bearer token."""
from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Mapping, Sequence

import grpc
from google.protobuf.duration_pb2 import Duration

from ._protos import job_pb2, job_service_pb2, job_service_pb2_grpc, queue_service_pb2, queue_service_pb2_grpc
from .errors import QueueServiceError
from .job_views import AddedJob, Job, struct_from_dict


class QueueClient:
    """A client of queue-service's JobService.

    `target` is `host:port` (plaintext HTTP/2 unless `secure`; `root_certificates` is a PEM bundle
    to trust instead of the system's). Every call sends `authorization: Bearer <token>`, and raises
    `QueueServiceError` when it fails. Use it as a context manager, or call `close()`.
    """

    def __init__(
        self,
        target: str,
        token: str,
        *,
        secure: bool = False,
        root_certificates: bytes | None = None,
        timeout: float = 30.0,
    ) -> None:
        if secure:
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates))
        else:
            self._channel = grpc.insecure_channel(target)
        self._jobs = job_service_pb2_grpc.JobServiceStub(self._channel)
        self._queues = queue_service_pb2_grpc.QueueServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._timeout = timeout

    def add_job(
        self,
        type: str,
        payload: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        priority: int | None = None,
        delay: timedelta | None = None,
        retry_limit: int | None = None,
        depends_on: Sequence[str] = (),
        on_parent_failure: str | None = None,
        concurrency_key: str | None = None,
    ) -> AddedJob:
        """Adds a job of a registered `type` (e.g. `payment:process`) and returns it.

        The same `idempotency_key` with the same request returns the original job (`deduplicated`);
        with a different request it is ALREADY_EXISTS. To retry safely after an error that leaves
        the outcome unknown (UNAVAILABLE, DEADLINE_EXCEEDED), pass a key of your own and send the
        same request again. Without one, a fresh UUID is sent, as the TypeScript SDK does.

        `depends_on`: ids of jobs that must complete first (the job waits in WAITING until then);
        `on_parent_failure`: "cancel" (the default) or "run"; `concurrency_key`: at most the queue's
        `key_concurrency` jobs with this key run at once.
        """
        options = job_pb2.JobOptions(idempotency_key=str(uuid.uuid4()) if idempotency_key is None else idempotency_key)
        if priority is not None:
            options.priority = priority
        if retry_limit is not None:
            options.retry_limit = retry_limit
        if delay is not None:
            options.delay.CopyFrom(_duration(delay))
        options.depends_on.extend(depends_on)
        if on_parent_failure is not None:
            options.on_parent_failure = {"cancel": job_pb2.PARENT_FAILURE_POLICY_CANCEL, "run": job_pb2.PARENT_FAILURE_POLICY_RUN}[on_parent_failure]
        if concurrency_key is not None:
            options.concurrency_key = concurrency_key
        request = job_service_pb2.AddJobRequest(type=type, payload=struct_from_dict(dict(payload)), options=options)
        response = self._unary(self._jobs.AddJob, request)
        return AddedJob.from_response(response.job, response.deduplicated)

    def get_job(self, id: str) -> Job:
        """The job with this id (NOT_FOUND for an unknown id or someone else's job)."""
        response = self._unary(self._jobs.GetJob, job_service_pb2.GetJobRequest(id=id))
        return Job.from_message(response.job)

    def wait_for_job(self, id: str, timeout: float = 60.0) -> Job:
        """Follows the job (WatchJob) until it reaches a final state, and returns it then.

        Final means COMPLETED, CANCELLED, dead-lettered, or FAILED with no retry left: the service
        ends the stream after that event. Past `timeout` seconds, QueueServiceError with
        DEADLINE_EXCEEDED.
        """
        last: Job | None = None
        try:
            for response in self._jobs.WatchJob(job_service_pb2.WatchJobRequest(id=id), metadata=self._metadata, timeout=timeout):
                # Every event carries the job after the change; an event type this client does not
                # know yet is no different in that.
                if response.event.HasField("job"):
                    last = Job.from_message(response.event.job)
        except grpc.RpcError as err:
            raise QueueServiceError.from_rpc_error(err) from err
        if last is None:
            raise QueueServiceError(grpc.StatusCode.INTERNAL, f"WatchJob ended without an event for job {id}")
        return last

    def create_queue(self, name: str, description: str = "") -> None:
        """Creates a queue of your own with the default policy (admin). ALREADY_EXISTS if it exists."""
        self._unary(self._queues.CreateQueue, queue_service_pb2.CreateQueueRequest(queue=queue_service_pb2.Queue(name=name, description=description)))

    def register_job_type(
        self,
        name: str,
        queue: str,
        payload_schema: Mapping[str, Any],
        *,
        producers: Sequence[str] = ("*",),
        workers: Sequence[str] = (),
        description: str = "",
    ) -> None:
        """Registers a job type of your own (admin): its queue, its payload's JSON Schema (draft 2020-12),
        the service principals that may add it and the worker principals that may run it."""
        job_type = queue_service_pb2.JobType(
            name=name,
            queue=queue,
            payload_schema=struct_from_dict(dict(payload_schema)),
            producers=list(producers),
            workers=list(workers),
            description=description,
        )
        self._unary(self._queues.RegisterJobType, queue_service_pb2.RegisterJobTypeRequest(job_type=job_type))

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> QueueClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _unary(self, method: Any, request: Any) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as err:
            raise QueueServiceError.from_rpc_error(err) from err


def _duration(value: timedelta) -> Duration:
    duration = Duration()
    duration.FromTimedelta(value)
    return duration
