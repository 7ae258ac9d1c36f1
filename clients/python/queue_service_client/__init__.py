"""A small, typed Python client of queue-service: add jobs, read them, wait for them.

    from queue_service_client import QueueClient

    with QueueClient("127.0.0.1:8080", token) as client:
        job = client.add_job("payment:process", {"paymentId": "pay_1", ...})
        done = client.wait_for_job(job.id)

and workers for job types of your own: `Worker(target, token, ["invoice:render"], handler).run()`.

The generated protobuf and gRPC modules are in `_gen/` (see clients/python/README.md).
"""
from .client import QueueClient
from .errors import FieldViolation, QueueServiceError
from .job_views import FINAL_STATES, AddedJob, Job, JobError
from .worker import PermanentJobError, Worker, WorkerJob

__all__ = [
    "QueueClient",
    "QueueServiceError",
    "FieldViolation",
    "Job",
    "AddedJob",
    "JobError",
    "FINAL_STATES",
    "Worker",
    "WorkerJob",
    "PermanentJobError",
]
