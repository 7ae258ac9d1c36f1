"""Job views: plain, typed dataclasses made from the generated `jobs.v1.Job` message."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from google.protobuf.struct_pb2 import Struct

from ._protos import job_pb2

#: States after which nothing more happens to a job unless an admin retries or redrives it.
FINAL_STATES = frozenset({"COMPLETED", "CANCELLED", "FAILED"})


@dataclass(frozen=True)
class JobError:
    """The latest failed attempt of a job (`jobs.v1.JobError`)."""

    message: str
    #: A stable reason when the processor gave one, e.g. CARD_DECLINED.
    reason: str
    retryable: bool
    attempt: int


@dataclass(frozen=True)
class Job:
    """A job as the service last reported it; `message` is the generated message, every field."""

    id: str
    type: str
    queue: str
    #: The JobState name without its prefix: WAITING, CREATED, RETRY, ACTIVE, COMPLETED, CANCELLED, FAILED.
    state: str
    payload: dict[str, Any]
    #: What the processor returned, once the job completed.
    result: dict[str, Any] | None
    last_error: JobError | None
    priority: int
    retry_count: int
    retry_limit: int
    idempotency_key: str
    created_by: str
    created_at: datetime | None
    #: The earliest time the next attempt may start.
    start_after: datetime | None
    completed_at: datetime | None
    root_job_id: str
    dead_letter: bool
    dead_letter_job_id: str
    #: The jobs this one waits (or waited) for.
    depends_on: list[str]
    concurrency_key: str
    message: job_pb2.Job = field(repr=False, compare=False)

    @property
    def is_final(self) -> bool:
        """Whether the job reached a final state."""
        return self.state in FINAL_STATES

    @classmethod
    def from_message(cls, job: job_pb2.Job) -> Job:
        """The view of a generated `jobs.v1.Job`."""
        return cls(**_view_fields(job))


@dataclass(frozen=True)
class AddedJob(Job):
    """The job AddJob returned; `deduplicated` when an earlier identical request had added it."""

    deduplicated: bool

    @classmethod
    def from_response(cls, job: job_pb2.Job, deduplicated: bool) -> AddedJob:
        """The view of an `AddJobResponse`."""
        return cls(**_view_fields(job), deduplicated=deduplicated)


def struct_from_dict(value: dict[str, Any]) -> Struct:
    """A `google.protobuf.Struct` holding a JSON-like dict (ValueError for anything else)."""
    struct = Struct()
    struct.update(value)
    return struct


def dict_from_struct(struct: Struct) -> dict[str, Any]:
    """The dict a Struct holds. Struct numbers are doubles: whole ones come back as int, as JSON reads them."""
    return {key: _plain(value) for key, value in struct.items()}


def _plain(value: Any) -> Any:
    # Struct.items() yields nested Struct and ListValue containers; turn them into dicts and lists.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Struct):
        return dict_from_struct(value)
    if isinstance(value, (str, bool, float)) or value is None:
        return value
    return [_plain(item) for item in value]


def _state_name(state: int) -> str:
    # A state added to the contract later than this client is shown by its number.
    if state not in job_pb2.JobState.values():
        return str(state)
    return job_pb2.JobState.Name(state).removeprefix("JOB_STATE_")


def _timestamp(job: job_pb2.Job, name: str) -> datetime | None:
    return getattr(job, name).ToDatetime(tzinfo=timezone.utc) if job.HasField(name) else None


def _view_fields(job: job_pb2.Job) -> dict[str, Any]:
    error = job.last_error if job.HasField("last_error") else None
    return {
        "id": job.id,
        "type": job.type,
        "queue": job.queue,
        "state": _state_name(job.state),
        "payload": dict_from_struct(job.payload),
        "result": dict_from_struct(job.result) if job.HasField("result") else None,
        "last_error": JobError(error.message, error.reason, error.retryable, error.attempt) if error else None,
        "priority": job.priority,
        "retry_count": job.retry_count,
        "retry_limit": job.retry_limit,
        "idempotency_key": job.idempotency_key,
        "created_by": job.created_by,
        "created_at": _timestamp(job, "created_at"),
        "start_after": _timestamp(job, "start_after"),
        "completed_at": _timestamp(job, "completed_at"),
        "root_job_id": job.root_job_id,
        "dead_letter": job.dead_letter,
        "dead_letter_job_id": job.dead_letter_job_id,
        "depends_on": list(job.depends_on),
        "concurrency_key": job.concurrency_key,
        "message": job,
    }
