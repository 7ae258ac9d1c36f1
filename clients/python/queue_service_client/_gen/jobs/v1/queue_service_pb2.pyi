from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from jobs.v1 import job_pb2 as _job_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateQueueRequest(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...

class CreateQueueResponse(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...

class DeleteJobTypeRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteJobTypeResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class DeleteQueueRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteQueueResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetQueueStatsRequest(_message.Message):
    __slots__ = ["name", "window"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    name: str
    window: _duration_pb2.Duration
    def __init__(self, name: _Optional[str] = ..., window: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetQueueStatsResponse(_message.Message):
    __slots__ = ["stats"]
    STATS_FIELD_NUMBER: _ClassVar[int]
    stats: QueueStats
    def __init__(self, stats: _Optional[_Union[QueueStats, _Mapping]] = ...) -> None: ...

class JobType(_message.Message):
    __slots__ = ["built_in", "create_time", "description", "name", "payload_schema", "producers", "queue", "update_time", "workers"]
    BUILT_IN_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    PRODUCERS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    built_in: bool
    create_time: _timestamp_pb2.Timestamp
    description: str
    name: str
    payload_schema: _struct_pb2.Struct
    producers: _containers.RepeatedScalarFieldContainer[str]
    queue: str
    update_time: _timestamp_pb2.Timestamp
    workers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., queue: _Optional[str] = ..., payload_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., producers: _Optional[_Iterable[str]] = ..., workers: _Optional[_Iterable[str]] = ..., built_in: bool = ..., description: _Optional[str] = ..., create_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class JobTypeStats(_message.Message):
    __slots__ = ["active", "cancelled", "completed", "dead_lettered", "delayed", "failed", "oldest_queued_age", "queued", "retrying", "type", "waiting"]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    DELAYED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    OLDEST_QUEUED_AGE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    RETRYING_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    active: int
    cancelled: int
    completed: int
    dead_lettered: int
    delayed: int
    failed: int
    oldest_queued_age: _duration_pb2.Duration
    queued: int
    retrying: int
    type: str
    waiting: int
    def __init__(self, type: _Optional[str] = ..., queued: _Optional[int] = ..., delayed: _Optional[int] = ..., active: _Optional[int] = ..., retrying: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., oldest_queued_age: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., waiting: _Optional[int] = ...) -> None: ...

class ListDeadLettersRequest(_message.Message):
    __slots__ = ["page_size", "page_token", "queue"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    queue: str
    def __init__(self, queue: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListDeadLettersResponse(_message.Message):
    __slots__ = ["jobs", "next_page_token"]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[_job_pb2.Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListJobTypesRequest(_message.Message):
    __slots__ = ["page_size", "page_token"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobTypesResponse(_message.Message):
    __slots__ = ["job_types", "next_page_token"]
    JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_types: _containers.RepeatedCompositeFieldContainer[JobType]
    next_page_token: str
    def __init__(self, job_types: _Optional[_Iterable[_Union[JobType, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListQueuesRequest(_message.Message):
    __slots__ = ["page_size", "page_token"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListQueuesResponse(_message.Message):
    __slots__ = ["next_page_token", "queues"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    queues: _containers.RepeatedCompositeFieldContainer[Queue]
    def __init__(self, queues: _Optional[_Iterable[_Union[Queue, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class PauseQueueRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PauseQueueResponse(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...

class PurgeDeadLettersRequest(_message.Message):
    __slots__ = ["before", "job_ids", "queue"]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    before: _timestamp_pb2.Timestamp
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    queue: str
    def __init__(self, queue: _Optional[str] = ..., job_ids: _Optional[_Iterable[str]] = ..., before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PurgeDeadLettersResponse(_message.Message):
    __slots__ = ["purged_count"]
    PURGED_COUNT_FIELD_NUMBER: _ClassVar[int]
    purged_count: int
    def __init__(self, purged_count: _Optional[int] = ...) -> None: ...

class Queue(_message.Message):
    __slots__ = ["built_in", "description", "job_types", "name", "paused", "paused_at", "paused_by", "policy", "stats"]
    BUILT_IN_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAUSED_AT_FIELD_NUMBER: _ClassVar[int]
    PAUSED_BY_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    built_in: bool
    description: str
    job_types: _containers.RepeatedScalarFieldContainer[str]
    name: str
    paused: bool
    paused_at: _timestamp_pb2.Timestamp
    paused_by: str
    policy: QueuePolicy
    stats: QueueStats
    def __init__(self, name: _Optional[str] = ..., job_types: _Optional[_Iterable[str]] = ..., paused: bool = ..., policy: _Optional[_Union[QueuePolicy, _Mapping]] = ..., stats: _Optional[_Union[QueueStats, _Mapping]] = ..., paused_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., paused_by: _Optional[str] = ..., description: _Optional[str] = ..., built_in: bool = ...) -> None: ...

class QueuePolicy(_message.Message):
    __slots__ = ["concurrency", "dead_letter_queue", "dead_letter_retention", "expire_in", "key_concurrency", "max_expire_in", "max_retry_limit", "priority", "retry_backoff", "retry_delay", "retry_delay_max", "retry_limit"]
    CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_QUEUE_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTER_RETENTION_FIELD_NUMBER: _ClassVar[int]
    EXPIRE_IN_FIELD_NUMBER: _ClassVar[int]
    KEY_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    MAX_EXPIRE_IN_FIELD_NUMBER: _ClassVar[int]
    MAX_RETRY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_MAX_FIELD_NUMBER: _ClassVar[int]
    RETRY_LIMIT_FIELD_NUMBER: _ClassVar[int]
    concurrency: int
    dead_letter_queue: str
    dead_letter_retention: _duration_pb2.Duration
    expire_in: _duration_pb2.Duration
    key_concurrency: int
    max_expire_in: _duration_pb2.Duration
    max_retry_limit: int
    priority: int
    retry_backoff: bool
    retry_delay: _duration_pb2.Duration
    retry_delay_max: _duration_pb2.Duration
    retry_limit: int
    def __init__(self, retry_limit: _Optional[int] = ..., retry_delay: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., retry_backoff: bool = ..., expire_in: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., dead_letter_queue: _Optional[str] = ..., retry_delay_max: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., dead_letter_retention: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., priority: _Optional[int] = ..., concurrency: _Optional[int] = ..., max_retry_limit: _Optional[int] = ..., max_expire_in: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., key_concurrency: _Optional[int] = ...) -> None: ...

class QueueStats(_message.Message):
    __slots__ = ["active", "cancelled", "captured_at", "completed", "dead_lettered", "delayed", "failed", "job_types", "oldest_queued_age", "queued", "retrying", "waiting", "window"]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CANCELLED_FIELD_NUMBER: _ClassVar[int]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    DELAYED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    OLDEST_QUEUED_AGE_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    RETRYING_FIELD_NUMBER: _ClassVar[int]
    WAITING_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    active: int
    cancelled: int
    captured_at: _timestamp_pb2.Timestamp
    completed: int
    dead_lettered: int
    delayed: int
    failed: int
    job_types: _containers.RepeatedCompositeFieldContainer[JobTypeStats]
    oldest_queued_age: _duration_pb2.Duration
    queued: int
    retrying: int
    waiting: int
    window: _duration_pb2.Duration
    def __init__(self, queued: _Optional[int] = ..., delayed: _Optional[int] = ..., active: _Optional[int] = ..., retrying: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., oldest_queued_age: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., cancelled: _Optional[int] = ..., window: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., captured_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., job_types: _Optional[_Iterable[_Union[JobTypeStats, _Mapping]]] = ..., waiting: _Optional[int] = ...) -> None: ...

class RedriveDeadLettersRequest(_message.Message):
    __slots__ = ["job_ids", "limit", "queue"]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    limit: int
    queue: str
    def __init__(self, queue: _Optional[str] = ..., job_ids: _Optional[_Iterable[str]] = ..., limit: _Optional[int] = ...) -> None: ...

class RedriveDeadLettersResponse(_message.Message):
    __slots__ = ["jobs", "redriven_count"]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    REDRIVEN_COUNT_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_job_pb2.Job]
    redriven_count: int
    def __init__(self, redriven_count: _Optional[int] = ..., jobs: _Optional[_Iterable[_Union[_job_pb2.Job, _Mapping]]] = ...) -> None: ...

class RegisterJobTypeRequest(_message.Message):
    __slots__ = ["job_type"]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    job_type: JobType
    def __init__(self, job_type: _Optional[_Union[JobType, _Mapping]] = ...) -> None: ...

class RegisterJobTypeResponse(_message.Message):
    __slots__ = ["job_type"]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    job_type: JobType
    def __init__(self, job_type: _Optional[_Union[JobType, _Mapping]] = ...) -> None: ...

class ResumeQueueRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ResumeQueueResponse(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...

class UpdateJobTypeRequest(_message.Message):
    __slots__ = ["job_type", "update_mask"]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    job_type: JobType
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, job_type: _Optional[_Union[JobType, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateJobTypeResponse(_message.Message):
    __slots__ = ["job_type"]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    job_type: JobType
    def __init__(self, job_type: _Optional[_Union[JobType, _Mapping]] = ...) -> None: ...

class UpdateQueueRequest(_message.Message):
    __slots__ = ["queue", "update_mask"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateQueueResponse(_message.Message):
    __slots__ = ["queue"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: Queue
    def __init__(self, queue: _Optional[_Union[Queue, _Mapping]] = ...) -> None: ...
