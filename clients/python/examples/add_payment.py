#!/usr/bin/python3
"""Adds a payment and waits for it to finish.

    npm start   # in another terminal
    /usr/bin/python3 clients/python/examples/add_payment.py --token "$(cat data/admin-token)"

`--payment-method tok_decline` (or another sandbox test card) rehearses a failure.
"""
import argparse
import sys
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout: the package is one level up

from queue_service_client import QueueClient, QueueServiceError  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:8080", help="host:port of the service (default: %(default)s)")
    parser.add_argument("--token", required=True, help="a bearer token, e.g. $(cat data/admin-token)")
    parser.add_argument("--payment-method", default="tok_visa", help="a sandbox card token (default: %(default)s)")
    parser.add_argument("--amount", type=int, default=1299, help="in minor units (default: %(default)s)")
    args = parser.parse_args()

    order = uuid.uuid4().hex[:8]
    payment = {
        "paymentId": f"pay_{order}",
        "orderId": f"ord_{order}",
        "customerId": "cus_1",
        "amount": args.amount,
        "currency": "USD",
        "paymentMethod": args.payment_method,
    }
    with QueueClient(args.target, args.token) as client:
        try:
            job = client.add_job("payment:process", payment, idempotency_key=f"ord_{order}-charge")
            print(f"added {job.type} {job.id} to queue {job.queue} ({job.state})")
            done = client.wait_for_job(job.id, timeout=120)
        except QueueServiceError as err:
            print(f"error: {err}", file=sys.stderr)
            for violation in err.field_violations:
                print(f"  {violation.field}: {violation.description}", file=sys.stderr)
            return 1
    print(f"{done.state} after {done.retry_count + 1} attempt(s)")
    if done.result is not None:
        print(f"result: {done.result}")
    if done.last_error is not None:
        print(f"last error: {done.last_error.reason or '-'} {done.last_error.message}")
    if done.dead_letter_job_id:
        print(f"dead letter: {done.dead_letter_job_id}")
    return 0 if done.state == "COMPLETED" else 2


if __name__ == "__main__":
    sys.exit(main())
