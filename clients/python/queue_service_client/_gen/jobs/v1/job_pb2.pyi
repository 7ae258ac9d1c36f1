from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
JOB_EVENT_TYPE_CANCELLED: JobEventType
JOB_EVENT_TYPE_CANCEL_REQUESTED: JobEventType
JOB_EVENT_TYPE_COMPLETED: JobEventType
JOB_EVENT_TYPE_CREATED: JobEventType
JOB_EVENT_TYPE_DEAD_LETTERED: JobEventType
JOB_EVENT_TYPE_EXPIRED: JobEventType
JOB_EVENT_TYPE_FAILED: JobEventType
JOB_EVENT_TYPE_PROGRESS: JobEventType
JOB_EVENT_TYPE_PURGED: JobEventType
JOB_EVENT_TYPE_REDRIVEN: JobEventType
JOB_EVENT_TYPE_RELEASED: JobEventType
JOB_EVENT_TYPE_RETRY_SCHEDULED: JobEventType
JOB_EVENT_TYPE_SNAPSHOT: JobEventType
JOB_EVENT_TYPE_STARTED: JobEventType
JOB_EVENT_TYPE_UNSPECIFIED: JobEventType
JOB_EVENT_TYPE_WAITING: JobEventType
JOB_STATE_ACTIVE: JobState
JOB_STATE_CANCELLED: JobState
JOB_STATE_COMPLETED: JobState
JOB_STATE_CREATED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_RETRY: JobState
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_WAITING: JobState
PARENT_FAILURE_POLICY_CANCEL: ParentFailurePolicy
PARENT_FAILURE_POLICY_RUN: ParentFailurePolicy
PARENT_FAILURE_POLICY_UNSPECIFIED: ParentFailurePolicy

class Job(_message.Message):
    __slots__ = ["cancel_requested", "completed_at", "concurrency_key", "created_at", "created_by", "dead_letter", "dead_letter_job_id", "depends_on", "expire_in", "id", "idempotency_key", "last_error", "on_parent_failure", "payload", "priority", "progress", "queue", "result", "retry_backoff", "retry_count", "retry_delay", "retry_limit", "root_job_id", "source_job_id", "start_after", "started_at", "state", "type"]
    CANCEL_REQUESTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_IN_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    ON_PARENT_FAILURE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    RETRY_COUNT_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    RETRY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    ROOT_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    cancel_requested: bool
    completed_at: _timestamp_pb2.Timestamp
    concurrency_key: str
    created_at: _timestamp_pb2.Timestamp
    created_by: str
    dead_letter: bool
    dead_letter_job_id: str
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    expire_in: _duration_pb2.Duration
    id: str
    idempotency_key: str
    last_error: JobError
    on_parent_failure: ParentFailurePolicy
    payload: _struct_pb2.Struct
    priority: int
    progress: JobProgress
    queue: str
    result: _struct_pb2.Struct
    retry_backoff: bool
    retry_count: int
    retry_delay: _duration_pb2.Duration
    retry_limit: int
    root_job_id: str
    source_job_id: str
    start_after: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    state: JobState
    type: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., queue: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[int] = ..., retry_count: _Optional[int] = ..., retry_limit: _Optional[int] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., start_after: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., last_error: _Optional[_Union[JobError, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., created_by: _Optional[str] = ..., cancel_requested: bool = ..., root_job_id: _Optional[str] = ..., dead_letter: bool = ..., source_job_id: _Optional[str] = ..., dead_letter_job_id: _Optional[str] = ..., retry_delay: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., retry_backoff: bool = ..., expire_in: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., progress: _Optional[_Union[JobProgress, _Mapping]] = ..., depends_on: _Optional[_Iterable[str]] = ..., on_parent_failure: _Optional[_Union[ParentFailurePolicy, str]] = ..., concurrency_key: _Optional[str] = ...) -> None: ...

class JobError(_message.Message):
    __slots__ = ["attempt", "message", "occurred_at", "reason", "retryable"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    message: str
    occurred_at: _timestamp_pb2.Timestamp
    reason: str
    retryable: bool
    def __init__(self, message: _Optional[str] = ..., retryable: bool = ..., attempt: _Optional[int] = ..., occurred_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ["cursor", "job", "occurred_at", "previous_state", "type"]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    cursor: str
    job: Job
    occurred_at: _timestamp_pb2.Timestamp
    previous_state: JobState
    type: JobEventType
    def __init__(self, type: _Optional[_Union[JobEventType, str]] = ..., job: _Optional[_Union[Job, _Mapping]] = ..., previous_state: _Optional[_Union[JobState, str]] = ..., occurred_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., cursor: _Optional[str] = ...) -> None: ...

class JobOptions(_message.Message):
    __slots__ = ["concurrency_key", "delay", "depends_on", "depends_on_batch_indexes", "expire_in", "idempotency_key", "on_parent_failure", "priority", "retry_backoff", "retry_delay", "retry_limit", "start_after"]
    CONCURRENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DELAY_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_BATCH_INDEXES_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_IN_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    ON_PARENT_FAILURE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    RETRY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_FIELD_NUMBER: _ClassVar[int]
    concurrency_key: str
    delay: _duration_pb2.Duration
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    depends_on_batch_indexes: _containers.RepeatedScalarFieldContainer[int]
    expire_in: _duration_pb2.Duration
    idempotency_key: str
    on_parent_failure: ParentFailurePolicy
    priority: int
    retry_backoff: bool
    retry_delay: _duration_pb2.Duration
    retry_limit: int
    start_after: _timestamp_pb2.Timestamp
    def __init__(self, priority: _Optional[int] = ..., start_after: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., delay: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., retry_limit: _Optional[int] = ..., retry_delay: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., retry_backoff: bool = ..., expire_in: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., idempotency_key: _Optional[str] = ..., depends_on: _Optional[_Iterable[str]] = ..., depends_on_batch_indexes: _Optional[_Iterable[int]] = ..., on_parent_failure: _Optional[_Union[ParentFailurePolicy, str]] = ..., concurrency_key: _Optional[str] = ...) -> None: ...

class JobProgress(_message.Message):
    __slots__ = ["message", "percent", "updated_at"]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    message: str
    percent: int
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, percent: _Optional[int] = ..., message: _Optional[str] = ..., updated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class ParentFailurePolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class JobEventType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
