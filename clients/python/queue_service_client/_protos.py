"""The generated protobuf and gRPC modules, made importable.

`buf generate --template buf.gen.python.yaml` writes them into `_gen/` with absolute imports
(`from jobs.v1 import job_pb2`), as protoc's Python output always does; so `_gen/` goes on
`sys.path` before they are imported. It goes at the end, so it shadows none of the application's
modules; an application module named `jobs` would shadow the generated package instead, which is
reported below rather than left as a puzzling import error. `google` is a namespace package:
`_gen/google/rpc` joins the runtime's `google.protobuf` under it.
"""
import sys
from pathlib import Path

GENERATED_ROOT = Path(__file__).resolve().parent / "_gen"
if str(GENERATED_ROOT) not in sys.path:
    sys.path.append(str(GENERATED_ROOT))

try:
    from google.rpc import error_details_pb2, status_pb2
    from jobs.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc, queue_service_pb2, queue_service_pb2_grpc, worker_service_pb2, worker_service_pb2_grpc
except ImportError as err:
    raise ImportError(f"queue_service_client: cannot import the generated code from {GENERATED_ROOT} ({err}); is a module named `jobs` or `google.rpc` shadowing it?") from err
if not Path(job_pb2.__file__).resolve().is_relative_to(GENERATED_ROOT):
    raise ImportError(f"queue_service_client: `jobs.v1` was imported from {job_pb2.__file__}, not from {GENERATED_ROOT}")

__all__ = [
    "error_details_pb2",
    "status_pb2",
    "job_pb2",
    "job_service_pb2",
    "job_service_pb2_grpc",
    "queue_service_pb2",
    "queue_service_pb2_grpc",
    "worker_service_pb2",
    "worker_service_pb2_grpc",
]
