"""Ingest integrity: unique dedup tokens, private files, a busy receiver that says when to retry,
a bounded shutdown with a hung store, and a pipeline re-applied under load without losing inserts."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import grpc
import pytest
from collector_support import EXPORT, RawClient, make_span, new_request, rows, start_collector, wait_stored
from google.rpc import error_details_pb2

from spanledger.collector.ingest.grpc_receiver import OtlpGrpcServer, ReceiverSettings, TraceExportHandler
from spanledger.collector.store import Store, StoreConfig, migrate
from spanledger.collector.wal import WriteAheadLog, encode_record

NO_RETAIN = "processors: {batch: {timeout: 100ms}}\nexporters: {clickhouse: {wal: {retain_done_mib: 0}}}\n"


def _one_span_request(name: str) -> bytes:
    request, scope = new_request("integrity")
    make_span(scope, name, start_ns=time.time_ns())
    return request.SerializeToString()


def test_no_segment_is_dropped_across_restarts_without_retained_segments(tmp_path):
    data_dir = tmp_path / "data"
    for i in range(3):  # each run's first segment has number 1 and the same size
        collector = start_collector(data_dir, NO_RETAIN)
        try:
            client = RawClient(collector.server.address)
            client.export(_one_span_request(f"run-{i}"))
            client.close()
            wait_stored(collector, i + 1)
            assert not list((data_dir / "wal").glob("*.done"))
        finally:
            collector.stop()
    collector = start_collector(data_dir, NO_RETAIN)
    try:
        assert [r["SpanName"] for r in rows(collector, "SELECT SpanName FROM spanledger.otel_traces ORDER BY 1")] == [
            "run-0", "run-1", "run-2"]
    finally:
        collector.stop()


def test_two_collectors_sharing_one_engine_drop_nothing(tmp_path):
    engine = StoreConfig(data_dir=tmp_path / "shared")
    first, second = Store(engine), Store(engine)
    migrate(first.writer, first.options)
    segments = []
    for name, store in (("collector-a", first), ("collector-b", second)):
        wal = WriteAheadLog(tmp_path / name / "wal", segment_max_age_s=60, fsync=False)
        wal.append(encode_record(_one_span_request(f"from-{name}"), ""), 1)
        wal.close()
        segment = wal.next_sealed(timeout=1)
        assert segment.seq == 1
        segments.append((store, segment))
    (_, a), (_, b) = segments
    assert a.size == b.size and a.instance != b.instance and a.dedup_token != b.dedup_token
    for store, segment in segments:
        store.load_segment(segment.path, segment.dedup_token)
    for store, segment in segments:  # a replay of either is still recognised
        store.load_segment(segment.path, segment.dedup_token)
    names = [r[0] for r in first.query("SELECT SpanName FROM spanledger.otel_traces ORDER BY 1").result_rows]
    assert names == ["from-collector-a", "from-collector-b"]
    second.close()
    first.close()


def test_data_files_are_private_whatever_the_umask(tmp_path):
    previous = os.umask(0)
    try:
        data_dir = tmp_path / "data"
        collector = start_collector(data_dir)
        try:
            client = RawClient(collector.server.address)
            client.export(_one_span_request("private"))
            client.close()
            wait_stored(collector, 1)
            wal = collector.wal
            quarantined = wal.quarantine_records(_segment_like(wal), [], "test reason")
        finally:
            collector.stop()
    finally:
        os.umask(previous)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    directories = [data_dir, data_dir / "wal", data_dir / "clickhouse", data_dir / "wal" / "quarantine"]
    assert {str(d): oct(mode(d)) for d in directories} == {str(d): "0o700" for d in directories}
    files = [data_dir / "instance_id", data_dir / "collector.lock", quarantined, quarantined.with_suffix(".reason"),
             *(data_dir / "wal").glob("*.done")]
    assert len(files) >= 5
    assert {str(f): oct(mode(f)) for f in files} == {str(f): "0o600" for f in files}


def _segment_like(wal):
    from spanledger.collector.wal import Segment
    return Segment(424242, wal.directory / f"{424242:012d}.wal", 0, 0, 0, 0, wal.instance)


def test_the_runtime_file_is_private(collector):
    assert stat.S_IMODE((collector.data_dir / "collector.json").stat().st_mode) == 0o600


class _BlockingSink:
    """A sink whose accept waits until released: holds every handler thread busy."""

    def __init__(self) -> None:
        self.release_all = threading.Event()
        self.inside = threading.Semaphore(0)

    def admit(self, size: int) -> int:
        return 0

    def release(self, reservation: int) -> None:
        pass

    def accept(self, checked, original, tenant) -> None:
        self.inside.release()
        self.release_all.wait(30)


def test_all_handlers_busy_answers_unavailable_with_retry_info():
    sink = _BlockingSink()
    settings = ReceiverSettings(endpoint="127.0.0.1:0", workers=2)
    server = OtlpGrpcServer(TraceExportHandler(sink, settings), settings)
    server.start()
    channel = grpc.insecure_channel(server.address)
    export = channel.unary_unary(EXPORT)
    payload = _one_span_request("busy")
    try:
        busy = [export.future(payload, timeout=30) for _ in range(2)]
        for _ in busy:
            assert sink.inside.acquire(timeout=10)
        refused = []
        for _ in range(6):  # more than the spare threads at once
            with pytest.raises(grpc.RpcError) as err:
                export(payload, timeout=10)
            refused.append(err.value)
        for error in refused:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error
            trailers = dict(error.trailing_metadata())
            info = error_details_pb2.RetryInfo.FromString(trailers["google.rpc.retryinfo-bin"])
            assert info.retry_delay.seconds + info.retry_delay.nanos / 1e9 > 0
            assert "export handlers are busy" in error.details()
        sink.release_all.set()
        for call in busy:
            call.result(timeout=10)
        export(payload, timeout=10)  # room again
    finally:
        sink.release_all.set()
        channel.close()
        server.stop(1)


def test_sigterm_with_a_hung_store_call_exits_within_the_documented_bound(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    config = tmp_path / "fast.yaml"
    config.write_text("processors:\n  batch:\n    timeout: 50ms\n")
    helper = Path(__file__).with_name("stuck_store_collector.py")
    proc = subprocess.Popen([sys.executable, str(helper), "--log-level", "warning", "collector", "--config", str(config),
                             "--data-dir", str(data_dir), "--grpc-endpoint", "127.0.0.1:0",
                             "--api-endpoint", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (data_dir / "collector.json").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.05)
        address = json.loads((data_dir / "collector.json").read_text())["grpc"]
        client = RawClient(address)
        for i in range(3):
            client.export(_one_span_request(f"kept-{i}"))  # acknowledged: in the WAL
        client.close()
        time.sleep(1.0)  # sealed, claimed, and the writers are inside the hung store call
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=40)
        took = time.monotonic() - started
        assert proc.returncode == 0, proc.stderr.read().decode()
        assert took <= 32, f"shutdown took {took:.1f}s; the bound is 30 s"
    finally:
        if proc.poll() is None:
            proc.kill()
    left = list((data_dir / "wal").glob("*.wal"))
    assert left, "the segment being stored stays in the WAL for the next start"
    collector = start_collector(data_dir)  # the next start stores it
    try:
        wait_stored(collector, 3)
    finally:
        collector.stop()


def test_reapplying_the_pipeline_under_load_loses_no_insert(collector_factory):
    collector = collector_factory("processors: {batch: {timeout: 500ms}}\n")
    client = RawClient(collector.server.address)
    sent = []
    stop = threading.Event()

    def load():
        i = 0
        while not stop.is_set():
            client.export(_one_span_request(f"load-{i}"))
            sent.append(i)
            i += 1
            time.sleep(0.02)

    sender = threading.Thread(target=load)
    sender.start()
    store = collector.store()
    admin = store._connect()  # a second client, as another collector's `spanledger migrate` would use
    try:
        for limit in (1000, 2000, 3000, 4000):
            time.sleep(0.3)
            report = migrate(admin, replace(store.options, max_attribute_length=limit))
            assert report.applied == ("900_ingest_pipeline.sql",)
    finally:
        stop.set()
        sender.join()
        admin.close()
        client.close()
    wait_stored(collector, len(sent), timeout=120)
    [row] = rows(collector, "SELECT count() AS n, uniqExact(SpanName) AS names FROM spanledger.otel_traces")
    assert row == {"n": len(sent), "names": len(sent)}
    assert collector.stats.segments_quarantined == 0
