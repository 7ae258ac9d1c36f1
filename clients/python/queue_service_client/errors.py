"""QueueServiceError: a failed call's gRPC status code, message and google.rpc error details."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Sequence

import grpc

from ._protos import error_details_pb2, status_pb2

#: The trailer in which gRPC servers send the whole google.rpc.Status, details included.
STATUS_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """One invalid field of a request (`google.rpc.BadRequest.FieldViolation`)."""

    #: The field's path, e.g. `payload.orderId` or `options.idempotency_key`.
    field: str
    description: str
    #: A stable machine-readable rule name, when the service gave one.
    reason: str


class QueueServiceError(Exception):
    """A call the service refused or could not complete.

    `code` is the gRPC status (INVALID_ARGUMENT, NOT_FOUND, UNAUTHENTICATED, ...). The details the
    service attaches are decoded: `field_violations` for bad input, `reason` and `metadata`
    (google.rpc.ErrorInfo, e.g. IDEMPOTENCY_KEY_REUSED with the original `job_id`), and
    `retry_after` (google.rpc.RetryInfo) when rate limited.
    """

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        field_violations: Sequence[FieldViolation] = (),
        reason: str = "",
        metadata: dict[str, str] | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field_violations = tuple(field_violations)
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.retry_after = retry_after

    @classmethod
    def from_rpc_error(cls, err: grpc.RpcError) -> QueueServiceError:
        """The error a failed grpc call raised (a `grpc.Call`), with its details decoded."""
        if not isinstance(err, grpc.Call):
            return cls(grpc.StatusCode.UNKNOWN, str(err))
        status = _status_details(err.trailing_metadata() or ())
        violations: list[FieldViolation] = []
        reason, metadata, retry_after = "", {}, None
        for detail in status.details if status else ():
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad_request = error_details_pb2.BadRequest()
                detail.Unpack(bad_request)
                violations += [FieldViolation(v.field, v.description, v.reason) for v in bad_request.field_violations]
            elif detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToTimedelta()
        return cls(err.code(), err.details() or "", field_violations=violations, reason=reason, metadata=metadata, retry_after=retry_after)


def _status_details(trailers: Sequence[tuple[str, str | bytes]]) -> status_pb2.Status | None:
    for key, value in trailers:
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            return status_pb2.Status.FromString(value)
    return None
