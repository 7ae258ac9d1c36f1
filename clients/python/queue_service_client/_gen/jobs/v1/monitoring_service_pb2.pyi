from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

ALERT_METRIC_DEAD_LETTER_COUNT: AlertMetric
ALERT_METRIC_FAILURE_RATE: AlertMetric
ALERT_METRIC_OLDEST_QUEUED_AGE: AlertMetric
ALERT_METRIC_QUEUE_DEPTH: AlertMetric
ALERT_METRIC_RUN_TIME_PERCENTILE: AlertMetric
ALERT_METRIC_UNSPECIFIED: AlertMetric
ALERT_STATE_ACKNOWLEDGED: AlertState
ALERT_STATE_FIRING: AlertState
ALERT_STATE_RESOLVED: AlertState
ALERT_STATE_UNSPECIFIED: AlertState
DESCRIPTOR: _descriptor.FileDescriptor
HEALTH_STATUS_DEGRADED: HealthStatus
HEALTH_STATUS_HEALTHY: HealthStatus
HEALTH_STATUS_UNHEALTHY: HealthStatus
HEALTH_STATUS_UNSPECIFIED: HealthStatus
RATE_LIMIT_SCOPE_API_PRINCIPAL: RateLimitScope
RATE_LIMIT_SCOPE_JOB_TYPE: RateLimitScope
RATE_LIMIT_SCOPE_QUEUE: RateLimitScope
RATE_LIMIT_SCOPE_UNSPECIFIED: RateLimitScope

class AcknowledgeAlertRequest(_message.Message):
    __slots__ = ["id"]
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class AcknowledgeAlertResponse(_message.Message):
    __slots__ = ["alert"]
    ALERT_FIELD_NUMBER: _ClassVar[int]
    alert: Alert
    def __init__(self, alert: _Optional[_Union[Alert, _Mapping]] = ...) -> None: ...

class Alert(_message.Message):
    __slots__ = ["acknowledged_at", "acknowledged_by", "fired_at", "id", "last_value", "notified", "resolved_at", "rule_id", "rule_name", "state", "summary", "threshold", "value"]
    ACKNOWLEDGED_AT_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_BY_FIELD_NUMBER: _ClassVar[int]
    FIRED_AT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    LAST_VALUE_FIELD_NUMBER: _ClassVar[int]
    NOTIFIED_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    acknowledged_at: _timestamp_pb2.Timestamp
    acknowledged_by: str
    fired_at: _timestamp_pb2.Timestamp
    id: str
    last_value: float
    notified: bool
    resolved_at: _timestamp_pb2.Timestamp
    rule_id: str
    rule_name: str
    state: AlertState
    summary: str
    threshold: float
    value: float
    def __init__(self, id: _Optional[str] = ..., rule_id: _Optional[str] = ..., rule_name: _Optional[str] = ..., state: _Optional[_Union[AlertState, str]] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., summary: _Optional[str] = ..., fired_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged_by: _Optional[str] = ..., resolved_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., last_value: _Optional[float] = ..., notified: bool = ...) -> None: ...

class AlertRule(_message.Message):
    __slots__ = ["created_at", "description", "enabled", "id", "job_type", "metric", "name", "percentile", "queue", "targets", "threshold", "updated_at", "window"]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPE_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    created_at: _timestamp_pb2.Timestamp
    description: str
    enabled: bool
    id: str
    job_type: str
    metric: AlertMetric
    name: str
    percentile: float
    queue: str
    targets: _containers.RepeatedCompositeFieldContainer[NotificationTarget]
    threshold: float
    updated_at: _timestamp_pb2.Timestamp
    window: _duration_pb2.Duration
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., metric: _Optional[_Union[AlertMetric, str]] = ..., queue: _Optional[str] = ..., job_type: _Optional[str] = ..., threshold: _Optional[float] = ..., window: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., percentile: _Optional[float] = ..., targets: _Optional[_Iterable[_Union[NotificationTarget, _Mapping]]] = ..., enabled: bool = ..., description: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ComponentHealth(_message.Message):
    __slots__ = ["checked_at", "detail", "name", "status"]
    CHECKED_AT_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    checked_at: _timestamp_pb2.Timestamp
    detail: str
    name: str
    status: HealthStatus
    def __init__(self, name: _Optional[str] = ..., status: _Optional[_Union[HealthStatus, str]] = ..., detail: _Optional[str] = ..., checked_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateAlertRuleRequest(_message.Message):
    __slots__ = ["rule"]
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: AlertRule
    def __init__(self, rule: _Optional[_Union[AlertRule, _Mapping]] = ...) -> None: ...

class CreateAlertRuleResponse(_message.Message):
    __slots__ = ["rule"]
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: AlertRule
    def __init__(self, rule: _Optional[_Union[AlertRule, _Mapping]] = ...) -> None: ...

class DeleteAlertRuleRequest(_message.Message):
    __slots__ = ["id"]
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class DeleteAlertRuleResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class DeleteRateLimitRequest(_message.Message):
    __slots__ = ["key", "scope"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    key: str
    scope: RateLimitScope
    def __init__(self, scope: _Optional[_Union[RateLimitScope, str]] = ..., key: _Optional[str] = ...) -> None: ...

class DeleteRateLimitResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class EmailTarget(_message.Message):
    __slots__ = ["to"]
    TO_FIELD_NUMBER: _ClassVar[int]
    to: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, to: _Optional[_Iterable[str]] = ...) -> None: ...

class GetHealthRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetHealthResponse(_message.Message):
    __slots__ = ["components", "status"]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    components: _containers.RepeatedCompositeFieldContainer[ComponentHealth]
    status: HealthStatus
    def __init__(self, status: _Optional[_Union[HealthStatus, str]] = ..., components: _Optional[_Iterable[_Union[ComponentHealth, _Mapping]]] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ["queue", "window"]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    queue: str
    window: _duration_pb2.Duration
    def __init__(self, queue: _Optional[str] = ..., window: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ["snapshot"]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: MetricsSnapshot
    def __init__(self, snapshot: _Optional[_Union[MetricsSnapshot, _Mapping]] = ...) -> None: ...

class JobTypeMetrics(_message.Message):
    __slots__ = ["active", "added", "completed", "completed_per_second", "dead_lettered", "depth", "enqueue_to_start", "failed", "failed_per_second", "retried", "run_time", "started", "type"]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    ENQUEUE_TO_START_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILED_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    active: int
    added: int
    completed: int
    completed_per_second: float
    dead_lettered: int
    depth: int
    enqueue_to_start: LatencySummary
    failed: int
    failed_per_second: float
    retried: int
    run_time: LatencySummary
    started: int
    type: str
    def __init__(self, type: _Optional[str] = ..., depth: _Optional[int] = ..., active: _Optional[int] = ..., added: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., completed_per_second: _Optional[float] = ..., failed_per_second: _Optional[float] = ..., enqueue_to_start: _Optional[_Union[LatencySummary, _Mapping]] = ..., run_time: _Optional[_Union[LatencySummary, _Mapping]] = ..., started: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., retried: _Optional[int] = ...) -> None: ...

class LatencySummary(_message.Message):
    __slots__ = ["count", "max", "p50", "p90", "p95", "p99"]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    P50_FIELD_NUMBER: _ClassVar[int]
    P90_FIELD_NUMBER: _ClassVar[int]
    P95_FIELD_NUMBER: _ClassVar[int]
    P99_FIELD_NUMBER: _ClassVar[int]
    count: int
    max: _duration_pb2.Duration
    p50: _duration_pb2.Duration
    p90: _duration_pb2.Duration
    p95: _duration_pb2.Duration
    p99: _duration_pb2.Duration
    def __init__(self, count: _Optional[int] = ..., p50: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., p90: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., p95: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., p99: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., max: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class ListAlertRulesRequest(_message.Message):
    __slots__ = ["page_size", "page_token"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlertRulesResponse(_message.Message):
    __slots__ = ["next_page_token", "rules"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    rules: _containers.RepeatedCompositeFieldContainer[AlertRule]
    def __init__(self, rules: _Optional[_Iterable[_Union[AlertRule, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListAlertsRequest(_message.Message):
    __slots__ = ["page_size", "page_token", "state"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    state: AlertState
    def __init__(self, state: _Optional[_Union[AlertState, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlertsResponse(_message.Message):
    __slots__ = ["alerts", "next_page_token"]
    ALERTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    alerts: _containers.RepeatedCompositeFieldContainer[Alert]
    next_page_token: str
    def __init__(self, alerts: _Optional[_Iterable[_Union[Alert, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListRateLimitsRequest(_message.Message):
    __slots__ = ["page_size", "page_token"]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRateLimitsResponse(_message.Message):
    __slots__ = ["next_page_token", "rate_limits"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMITS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    rate_limits: _containers.RepeatedCompositeFieldContainer[RateLimit]
    def __init__(self, rate_limits: _Optional[_Iterable[_Union[RateLimit, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class MetricsSnapshot(_message.Message):
    __slots__ = ["captured_at", "queues", "window"]
    CAPTURED_AT_FIELD_NUMBER: _ClassVar[int]
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    captured_at: _timestamp_pb2.Timestamp
    queues: _containers.RepeatedCompositeFieldContainer[QueueMetrics]
    window: _duration_pb2.Duration
    def __init__(self, captured_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., window: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., queues: _Optional[_Iterable[_Union[QueueMetrics, _Mapping]]] = ...) -> None: ...

class NotificationTarget(_message.Message):
    __slots__ = ["email", "webhook"]
    EMAIL_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    email: EmailTarget
    webhook: WebhookTarget
    def __init__(self, webhook: _Optional[_Union[WebhookTarget, _Mapping]] = ..., email: _Optional[_Union[EmailTarget, _Mapping]] = ...) -> None: ...

class QueueMetrics(_message.Message):
    __slots__ = ["active", "added", "completed", "completed_per_second", "dead_lettered", "depth", "enqueue_to_start", "failed", "failed_per_second", "job_types", "oldest_queued_age", "paused", "queue", "retried", "run_time", "scheduled", "started"]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    ADDED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    DEAD_LETTERED_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    ENQUEUE_TO_START_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    FAILED_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    JOB_TYPES_FIELD_NUMBER: _ClassVar[int]
    OLDEST_QUEUED_AGE_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    RETRIED_FIELD_NUMBER: _ClassVar[int]
    RUN_TIME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    active: int
    added: int
    completed: int
    completed_per_second: float
    dead_lettered: int
    depth: int
    enqueue_to_start: LatencySummary
    failed: int
    failed_per_second: float
    job_types: _containers.RepeatedCompositeFieldContainer[JobTypeMetrics]
    oldest_queued_age: _duration_pb2.Duration
    paused: bool
    queue: str
    retried: int
    run_time: LatencySummary
    scheduled: int
    started: int
    def __init__(self, queue: _Optional[str] = ..., depth: _Optional[int] = ..., active: _Optional[int] = ..., added: _Optional[int] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ..., completed_per_second: _Optional[float] = ..., failed_per_second: _Optional[float] = ..., enqueue_to_start: _Optional[_Union[LatencySummary, _Mapping]] = ..., run_time: _Optional[_Union[LatencySummary, _Mapping]] = ..., job_types: _Optional[_Iterable[_Union[JobTypeMetrics, _Mapping]]] = ..., paused: bool = ..., scheduled: _Optional[int] = ..., oldest_queued_age: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., started: _Optional[int] = ..., dead_lettered: _Optional[int] = ..., retried: _Optional[int] = ...) -> None: ...

class RateLimit(_message.Message):
    __slots__ = ["interval", "key", "limit", "scope", "updated_at", "updated_by"]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_BY_FIELD_NUMBER: _ClassVar[int]
    interval: _duration_pb2.Duration
    key: str
    limit: int
    scope: RateLimitScope
    updated_at: _timestamp_pb2.Timestamp
    updated_by: str
    def __init__(self, scope: _Optional[_Union[RateLimitScope, str]] = ..., key: _Optional[str] = ..., limit: _Optional[int] = ..., interval: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ..., updated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., updated_by: _Optional[str] = ...) -> None: ...

class SetRateLimitRequest(_message.Message):
    __slots__ = ["rate_limit"]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    rate_limit: RateLimit
    def __init__(self, rate_limit: _Optional[_Union[RateLimit, _Mapping]] = ...) -> None: ...

class SetRateLimitResponse(_message.Message):
    __slots__ = ["rate_limit"]
    RATE_LIMIT_FIELD_NUMBER: _ClassVar[int]
    rate_limit: RateLimit
    def __init__(self, rate_limit: _Optional[_Union[RateLimit, _Mapping]] = ...) -> None: ...

class UpdateAlertRuleRequest(_message.Message):
    __slots__ = ["rule", "update_mask"]
    RULE_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    rule: AlertRule
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, rule: _Optional[_Union[AlertRule, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateAlertRuleResponse(_message.Message):
    __slots__ = ["rule"]
    RULE_FIELD_NUMBER: _ClassVar[int]
    rule: AlertRule
    def __init__(self, rule: _Optional[_Union[AlertRule, _Mapping]] = ...) -> None: ...

class WatchMetricsRequest(_message.Message):
    __slots__ = ["interval", "queue"]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    interval: _duration_pb2.Duration
    queue: str
    def __init__(self, queue: _Optional[str] = ..., interval: _Optional[_Union[_duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class WatchMetricsResponse(_message.Message):
    __slots__ = ["snapshot"]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: MetricsSnapshot
    def __init__(self, snapshot: _Optional[_Union[MetricsSnapshot, _Mapping]] = ...) -> None: ...

class WebhookTarget(_message.Message):
    __slots__ = ["url"]
    URL_FIELD_NUMBER: _ClassVar[int]
    url: str
    def __init__(self, url: _Optional[str] = ...) -> None: ...

class HealthStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class AlertMetric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class AlertState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class RateLimitScope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
