"""Drives QueueClient against a live service and prints one JSON line per step.

test/python-client.test.ts runs it against an in-process server and judges the lines; it asserts
nothing itself, beyond crashing (a non-zero exit) on an error it did not expect.

    QS_TARGET=127.0.0.1:8080 QS_TOKEN=... /usr/bin/python3 clients/python/tests/smoke.py
"""
import json
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from queue_service_client import QueueClient, QueueServiceError  # noqa: E402

UNKNOWN_JOB_ID = "00000000-0000-4000-8000-000000000000"


def emit(step: str, **fields: Any) -> None:
    print(json.dumps({"step": step, **fields}, default=str), flush=True)


def error_fields(err: QueueServiceError) -> dict[str, Any]:
    return {
        "code": err.code.name,
        "message": err.message,
        "violations": [{"field": v.field, "description": v.description, "reason": v.reason} for v in err.field_violations],
        "reason": err.reason,
        "metadata": err.metadata,
    }


def emit_error(step: str, call: Callable[[], object]) -> None:
    """Emits the QueueServiceError `call` raises, or code OK if it raises none."""
    try:
        call()
    except QueueServiceError as err:
        emit(step, **error_fields(err))
        return
    emit(step, code="OK")


def main() -> None:
    target, token = os.environ["QS_TARGET"], os.environ["QS_TOKEN"]
    suffix = uuid.uuid4().hex[:8]
    payment = {"paymentId": f"pay_{suffix}", "orderId": f"ord_{suffix}", "customerId": "cus_1", "amount": 1299, "currency": "USD", "paymentMethod": "tok_visa"}

    with QueueClient(target, token) as client:
        added = client.add_job("payment:process", payment)
        emit("added", id=added.id, type=added.type, queue=added.queue, state=added.state, payload=added.payload, idempotency_key=added.idempotency_key, deduplicated=added.deduplicated)

        done = client.wait_for_job(added.id, timeout=60)
        emit("waited", id=done.id, state=done.state, is_final=done.is_final, result=done.result, completed_at=done.completed_at)

        got = client.get_job(added.id)
        emit("got", id=got.id, state=got.state, payload=got.payload, created_by=got.created_by, created_at=got.created_at)

        key = f"smoke-{suffix}"
        first = client.add_job("payment:process", {**payment, "paymentId": f"pay_{suffix}_2"}, idempotency_key=key)
        second = client.add_job("payment:process", {**payment, "paymentId": f"pay_{suffix}_2"}, idempotency_key=key)
        emit("idempotent", first=first.id, second=second.id, first_deduplicated=first.deduplicated, second_deduplicated=second.deduplicated)
        emit_error("key_reused", lambda: client.add_job("payment:process", {**payment, "paymentId": "another"}, idempotency_key=key))

        invalid = {k: v for k, v in payment.items() if k != "orderId"}
        emit_error("invalid", lambda: client.add_job("payment:process", invalid))

        emit_error("watch_unknown", lambda: client.wait_for_job(UNKNOWN_JOB_ID, timeout=10))

        later = client.add_job("payment:process", {**payment, "paymentId": f"pay_{suffix}_3"}, delay=timedelta(hours=1), priority=5, retry_limit=1)
        delay_seconds = (later.start_after - later.created_at).total_seconds() if later.start_after and later.created_at else None
        emit("delayed", id=later.id, state=later.state, priority=later.priority, retry_limit=later.retry_limit, delay_seconds=delay_seconds)
        emit_error("wait_timeout", lambda: client.wait_for_job(later.id, timeout=1))
        child = client.add_job(
            "payment:process", {**payment, "paymentId": f"pay_{suffix}_4"}, depends_on=[later.id], on_parent_failure="run", concurrency_key="customer-7"
        )
        emit("child", state=child.state, depends_on=child.depends_on, concurrency_key=child.concurrency_key)

    with QueueClient(target, "not-a-token") as stranger:
        emit_error("bad_token", lambda: stranger.get_job(added.id))


if __name__ == "__main__":
    main()
