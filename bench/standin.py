"""A stand-in OTLP/gRPC TraceService: the load generator's own reference.

Why: to show the load generator out-runs the collector, measure it against a
receiver that does (almost) nothing — accept the bytes, optionally parse them —
in the same run.  It can also answer every Nth call UNAVAILABLE with a
RetryInfo delay, to test that the generator honours backpressure.

    python -m bench.standin --port 4399 [--parse] [--unavailable-every 5]
"""

from __future__ import annotations

import argparse
import signal
import threading
import time
from concurrent import futures

import grpc

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _unavailable(context, delay_s: float) -> None:
    from google.protobuf import any_pb2, duration_pb2
    from google.rpc import code_pb2, error_details_pb2, status_pb2
    from grpc_status import rpc_status

    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(nanos=int(delay_s * 1e9))))
    status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="stand-in backpressure", details=[detail])
    context.abort_with_status(rpc_status.to_status(status))


def serve(port: int, parse: bool = False, unavailable_every: int = 0, delay_s: float = 0.05, workers: int = 8):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    stats = {"calls": 0, "accepted": 0, "spans": 0, "bytes": 0}
    lock = threading.Lock()

    def export(request: bytes, context):
        with lock:
            stats["calls"] += 1
            n = stats["calls"]
        if unavailable_every and n % unavailable_every == 0:
            _unavailable(context, delay_s)
        spans = 0
        if parse:
            req = ExportTraceServiceRequest.FromString(request)
            spans = sum(len(ss.spans) for rs in req.resource_spans for ss in rs.scope_spans)
        with lock:
            stats["accepted"] += 1
            stats["spans"] += spans
            stats["bytes"] += len(request)
        return b""  # an empty ExportTraceServiceResponse

    handler = grpc.method_handlers_generic_handler(
        "opentelemetry.proto.collector.trace.v1.TraceService",
        {"Export": grpc.unary_unary_rpc_method_handler(export, request_deserializer=None, response_serializer=None)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers),
                         options=[("grpc.max_receive_message_length", 64 << 20)])
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server, bound, stats


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--parse", action="store_true")
    ap.add_argument("--unavailable-every", type=int, default=0)
    ap.add_argument("--delay", type=float, default=0.05)
    a = ap.parse_args(argv)
    server, port, stats = serve(a.port, a.parse, a.unavailable_every, a.delay)
    print(f"listening 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    while not stop.wait(0.2):
        pass
    server.stop(1).wait()
    print(f"stats {stats}", flush=True)
    time.sleep(0.05)


if __name__ == "__main__":
    main()
