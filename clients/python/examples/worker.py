#!/usr/bin/python3
"""A worker for a job type of your own: registers `report:build` (queue `reports`) if it is not
there, adds a few reports, and builds them with progress, until Ctrl-C (or, with --once, until
those are done).

    npm start   # in another terminal
    /usr/bin/python3 clients/python/examples/worker.py --token "$(cat data/admin-token)" --once

With `npm start`'s admin token it registers the type and adds the jobs itself. A real worker runs
with a token of role `worker` named in the type's `workers` list, and producers add the jobs.
"""
import argparse
import json
import sys
import threading
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout: the package is one level up

import grpc  # noqa: E402

from queue_service_client import QueueClient, QueueServiceError, Worker  # noqa: E402

SCHEMA = {
    "type": "object",
    "properties": {"reportId": {"type": "string", "minLength": 1}, "sections": {"type": "integer", "minimum": 1, "maximum": 20}},
    "required": ["reportId", "sections"],
    "additionalProperties": False,
}


def build(job):
    """The handler: one step per section, with progress; stops early when asked to."""
    sections = job.payload["sections"]
    for n in range(1, sections + 1):
        if job.wait(0.05):  # a cancel request or a lost lease: stop before going on
            raise RuntimeError(f"stopped ({job.stop_reason})")
        job.progress(round(n * 100 / sections), f"section {n} of {sections}")
    return {"reportId": job.payload["reportId"], "pages": sections * 2}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:8080", help="host:port of the service (default: %(default)s)")
    parser.add_argument("--token", required=True, help="a bearer token, e.g. $(cat data/admin-token)")
    parser.add_argument("--once", action="store_true", help="stop once the reports this run added are done")
    args = parser.parse_args()

    with QueueClient(args.target, args.token) as client:
        for step in (lambda: client.create_queue("reports", "Reports"), lambda: client.register_job_type("report:build", "reports", SCHEMA)):
            try:
                step()
            except QueueServiceError as err:
                if err.code != grpc.StatusCode.ALREADY_EXISTS:
                    raise
        added = [client.add_job("report:build", {"reportId": f"rep_{uuid.uuid4().hex[:8]}", "sections": 3}) for _ in range(3)]
        print("added", ", ".join(job.id for job in added), flush=True)

        worker = Worker(args.target, args.token, ["report:build"], build, concurrency=2)
        runner = threading.Thread(target=worker.run)
        runner.start()
        failed = 0
        try:
            for job in added:
                done = client.wait_for_job(job.id, timeout=60)
                progress = done.message.progress.percent if done.message.HasField("progress") else 0
                print(f"{done.id}: {done.state} {json.dumps(done.result, sort_keys=True)} (progress {progress}%)", flush=True)
                failed += done.state != "COMPLETED"
            if not args.once:
                runner.join()
        except KeyboardInterrupt:
            pass
        finally:
            worker.stop()
            runner.join()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
