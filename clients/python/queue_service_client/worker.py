"""Worker: runs jobs of your own job types in your own Python service, over WorkerService.

    from queue_service_client import Worker, PermanentJobError

    def render(job):
        job.progress(50, "rendering")
        if job.stopped:              # a cancel request or a lost lease: stop before any side effect
            raise RuntimeError("stopped")
        return {"url": f"https://files.example/{job.payload['invoiceId']}.pdf"}

    Worker("127.0.0.1:8080", token, ["invoice:render"], render, concurrency=4).run()

The worker long-polls FetchJobs, runs each job's handler in a thread of its own (at most
`concurrency` at once), extends the leases of running jobs with one HeartbeatJobs call every few
seconds, and completes the job with the handler's return value (a JSON object) or fails it with the
handler's exception: retried by the queue's policy, or for good with `PermanentJobError`. `run()`
returns after `stop()`, or SIGTERM/SIGINT when it runs in the main thread: no new fetch, running
jobs get `grace` seconds, the rest are failed as retryable. A lost connection is retried with
backoff until stopped. Delivery is at least once: a worker that dies mid-job loses its lease and the
job runs again elsewhere.
"""
from __future__ import annotations

import logging
import os
import random
import signal
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import grpc
from google.protobuf.duration_pb2 import Duration

from ._protos import worker_service_pb2, worker_service_pb2_grpc
from .errors import QueueServiceError
from .job_views import Job, struct_from_dict

log = logging.getLogger("queue_service_client.worker")


class PermanentJobError(Exception):
    """Raised by a handler: the job fails for good (its dead letter queue), whatever retries are left."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        #: A stable machine-readable reason, e.g. INVALID_TEMPLATE (^[A-Z][A-Z0-9_]{0,63}$).
        self.reason = reason


@dataclass
class WorkerJob:
    """A job handed to a handler."""

    id: str
    type: str
    payload: dict[str, Any]
    #: 1 for the first attempt.
    attempt: int
    job: Job
    _worker: "Worker" = field(repr=False)
    _token: str = field(repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    #: Why the job must stop: "lease-lost", "cancel-requested" or "shutting-down" (None: go on).
    stop_reason: str | None = None

    @property
    def stopped(self) -> bool:
        """Whether the job must stop (its lease was lost, an admin asked to cancel, or the worker stops)."""
        return self._stop.is_set()

    def wait(self, seconds: float) -> bool:
        """Sleeps up to `seconds`, waking early (and returning True) when the job must stop."""
        return self._stop.wait(seconds)

    def progress(self, percent: int, message: str = "") -> None:
        """Reports progress (0-100, a short note): Job.progress and a PROGRESS event watchers see."""
        self._worker._report_progress(self, percent, message)

    def _halt(self, reason: str) -> None:
        if not self._stop.is_set():
            self.stop_reason = reason
            self._stop.set()


Handler = Callable[[WorkerJob], "Mapping[str, Any] | None"]


class Worker:
    """Runs `handler` for jobs of `types` (each must list this worker's principal in `workers`)."""

    def __init__(
        self,
        target: str,
        token: str,
        types: Sequence[str],
        handler: Handler,
        *,
        concurrency: int = 4,
        poll_wait: float = 20.0,
        heartbeat_interval: float = 3.0,
        grace: float = 10.0,
        worker_id: str | None = None,
        secure: bool = False,
        root_certificates: bytes | None = None,
        handle_signals: bool = True,
    ) -> None:
        if secure:
            self._channel = grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates))
        else:
            self._channel = grpc.insecure_channel(target)
        self._stub = worker_service_pb2_grpc.WorkerServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)
        self._types = list(types)
        self._handler = handler
        self._concurrency = max(1, concurrency)
        self._poll_wait = min(max(poll_wait, 0.0), 30.0)
        self._heartbeat_interval = heartbeat_interval
        self._grace = grace
        self._worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self._handle_signals = handle_signals
        self._running: dict[str, WorkerJob] = {}
        self._lock = threading.Lock()
        self._slot_freed = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self._fetch: grpc.Future | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def run(self) -> None:
        """Fetches and runs jobs until `stop()` (or SIGTERM/SIGINT), then drains and returns."""
        if self._handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop())
        beat = threading.Thread(target=self._heartbeats, name="queue-worker-heartbeat", daemon=True)
        beat.start()
        with ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="queue-worker") as pool:
            self._fetch_loop(pool)
            deadline = time.monotonic() + self._grace
            while self.running and time.monotonic() < deadline:
                time.sleep(0.02)
            with self._lock:
                for job in self._running.values():
                    job._halt("shutting-down")
        self._channel.close()

    def stop(self) -> None:
        """Stops fetching; running jobs get the grace period. Safe to call from any thread or a signal handler."""
        self._stopping.set()
        fetch = self._fetch
        if fetch is not None:
            fetch.cancel()
        with self._lock:
            self._slot_freed.notify_all()

    @property
    def running(self) -> int:
        """Jobs running now."""
        with self._lock:
            return len(self._running)

    # -- the loops -------------------------------------------------------------------------------

    def _fetch_loop(self, pool: ThreadPoolExecutor) -> None:
        failures = 0
        while not self._stopping.is_set():
            with self._lock:
                while len(self._running) >= self._concurrency and not self._stopping.is_set():
                    self._slot_freed.wait(1.0)
                free = self._concurrency - len(self._running)
            if self._stopping.is_set():
                return
            wait = Duration()
            wait.FromMilliseconds(int(self._poll_wait * 1000))
            request = worker_service_pb2.FetchJobsRequest(types=self._types, max_jobs=min(free, 100), wait=wait, worker_id=self._worker_id[:200])
            try:
                self._fetch = self._stub.FetchJobs.future(request, metadata=self._metadata, timeout=self._poll_wait + 30)
                response = self._fetch.result()
                failures = 0
            except grpc.FutureCancelledError:
                return
            except grpc.RpcError as err:
                if self._stopping.is_set():
                    return
                log.warning("fetch failed (%s); retrying", QueueServiceError.from_rpc_error(err))
                self._stopping.wait(min(5.0, 0.1 * 2**failures) * random.uniform(0.5, 1.0))
                failures += 1
                continue
            finally:
                self._fetch = None
            for leased in response.jobs:
                job = Job.from_message(leased.job)
                work = WorkerJob(id=job.id, type=job.type, payload=job.payload, attempt=job.retry_count + 1, job=job, _worker=self, _token=leased.lease.token)
                with self._lock:
                    self._running[leased.lease.token] = work
                pool.submit(self._run, work)

    def _run(self, job: WorkerJob) -> None:
        try:
            try:
                result = self._handler(job)
            except Exception as err:  # noqa: BLE001 - every failure of a handler fails its attempt
                if job.stop_reason == "lease-lost":
                    return
                permanent = isinstance(err, PermanentJobError)
                message = str(err) or type(err).__name__
                if job.stop_reason == "shutting-down":
                    message = f"worker shut down: {message}"
                self._call(
                    self._stub.FailJob,
                    worker_service_pb2.FailJobRequest(
                        lease_token=job._token, error=message[:1000], retryable=not permanent, reason=err.reason if permanent else ""
                    ),
                    job,
                )
                return
            if job.stop_reason == "lease-lost":
                return  # another attempt owns the job now
            self._call(self._stub.CompleteJob, worker_service_pb2.CompleteJobRequest(lease_token=job._token, result=struct_from_dict(dict(result or {}))), job)
        finally:
            with self._lock:
                self._running.pop(job._token, None)
                self._slot_freed.notify_all()

    def _call(self, method: Any, request: Any, job: WorkerJob) -> None:
        """Records the end of an attempt; LEASE_LOST means it had ended already (nothing to do)."""
        for attempt in range(5):
            try:
                method(request, metadata=self._metadata, timeout=30)
                return
            except grpc.RpcError as err:
                error = QueueServiceError.from_rpc_error(err)
                if error.code == grpc.StatusCode.FAILED_PRECONDITION:
                    return
                if error.code != grpc.StatusCode.UNAVAILABLE or attempt == 4:
                    log.warning("could not record the end of job %s (%s); its lease will lapse and it will run again", job.id, error)
                    return
                time.sleep(0.2 * 2**attempt)

    def _heartbeats(self) -> None:
        while not self._channel_closed():
            time.sleep(self._heartbeat_interval)
            with self._lock:
                held = [job for job in self._running.values() if not job.stopped or job.stop_reason == "shutting-down"]
            for start in range(0, len(held), 500):
                batch = held[start : start + 500]
                try:
                    response = self._stub.HeartbeatJobs(
                        worker_service_pb2.HeartbeatJobsRequest(lease_tokens=[j._token for j in batch]), metadata=self._metadata, timeout=10
                    )
                except grpc.RpcError as err:
                    log.warning("heartbeat failed (%s)", QueueServiceError.from_rpc_error(err))
                    continue
                by_token = {j._token: j for j in batch}
                for status in response.leases:
                    job = by_token.get(status.lease_token)
                    if job is None:
                        continue
                    if status.state == worker_service_pb2.LEASE_STATE_LOST:
                        job._halt("lease-lost")
                    elif status.state == worker_service_pb2.LEASE_STATE_CANCEL_REQUESTED:
                        job._halt("cancel-requested")

    def _channel_closed(self) -> bool:
        return self._stopping.is_set() and self.running == 0

    def _report_progress(self, job: WorkerJob, percent: int, message: str) -> None:
        try:
            self._stub.ReportProgress(
                worker_service_pb2.ReportProgressRequest(lease_token=job._token, percent=max(0, min(100, int(percent))), message=message[:200]),
                metadata=self._metadata,
                timeout=10,
            )
        except grpc.RpcError as err:
            error = QueueServiceError.from_rpc_error(err)
            if error.code == grpc.StatusCode.FAILED_PRECONDITION:
                job._halt("lease-lost")
            else:
                log.warning("progress of job %s not recorded (%s)", job.id, error)
