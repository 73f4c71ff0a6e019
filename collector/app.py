"""The collector process: configuration in, long-lived parts started and stopped in order.

Start order: WAL (replays what a crash left) -> store (may be unreachable: the
collector starts anyway and keeps accepting into the WAL) -> segment writer ->
query API -> gRPC receiver.  Stop order is the reverse, so nothing is accepted
that cannot be made durable, and everything durable is stored before exit.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .config import CollectorConfig, ConfigError, bearer_tokens
from .ingest.admission import AdmissionControl
from .ingest.sink import WalSink
from .stats import IngestStats
from .writer.segment_writer import Backoff, SegmentWriter
from .pricing.lookup import CollectorPricing
from .pricing.pairs import model_pairs
from .auth import TokenAuth
from .ingest.export_steps import ExportSteps
from .ingest.grpc_receiver import OtlpGrpcServer, ReceiverSettings, TlsFiles, TraceExportHandler
from .store import SchemaOptions, Store, StoreConfig, StoreUnavailable, migrate
from .store.retention import ContentRetention
from .store.backend import INSERT_BYTES_PER_SPAN, EngineMemory
from .wal import FILE_MODE, WriteAheadLog, instance_id, private_dir, write_private

log = logging.getLogger(__name__)

RUNTIME_FILE = "collector.json"  # how `spanledger sql` finds a running collector on a data dir
LOCK_FILE = "collector.lock"


class DataDirInUse(RuntimeError):
    """Another collector owns this data directory (its WAL and, when embedded, its store)."""


def lock_data_dir(data_dir: Path):
    """Hold an exclusive lock on ``data_dir`` for the life of the process (released by the OS at exit)."""
    private_dir(data_dir)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, FILE_MODE)
    os.fchmod(fd, FILE_MODE)
    handle = open(fd, "a+")  # noqa: SIM115 - held until stop()
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise DataDirInUse(f"another collector is running on {data_dir} (its WAL and store admit one process): "
                           "stop it, or give this one its own --data-dir") from None
    return handle


@dataclass(frozen=True)
class Overrides:
    """Command-line flags that win over the configuration file."""

    grpc_endpoint: str | None = None
    data_dir: str | None = None
    clickhouse_url: str | None = None
    api_endpoint: str | None = None
    allow_insecure_remote: bool = False
    http_endpoint: str | None = None  # OTLP/HTTP; given, it also turns the protocol on


def store_config(config: CollectorConfig, overrides: Overrides = Overrides()) -> StoreConfig:
    ch = config.get("exporters.clickhouse")
    try:
        options = _schema_options(ch)
    except ValueError as exc:
        raise ConfigError(f"exporters.clickhouse: {exc}") from exc
    return StoreConfig(
        data_dir=Path(overrides.data_dir or ch["data_dir"]),
        url=overrides.clickhouse_url if overrides.clickhouse_url is not None else ch["endpoint"],
        username=ch["username"], password=ch["password"], options=options,
        memory=engine_memory(config), timeout_s=ch["timeout"],
    )


def engine_memory(config: CollectorConfig) -> EngineMemory:
    engine = config.get("exporters.clickhouse.engine")
    return EngineMemory.for_ceiling(config.get("processors.memory_limiter.limit_mib"),
                                    server_mib=engine["max_server_memory_mib"], query_mib=engine["max_query_memory_mib"],
                                    merge_mib=engine["max_merge_memory_mib"], cache_mib=engine["cache_mib"])


def _schema_options(ch: dict) -> SchemaOptions:
    from .store.retention import retention_days

    limits = ch["limits"]
    days = retention_days(ch)
    return SchemaOptions(
        retention_spans_days=days["spans"], retention_rollups_days=days["rollups"],
        database=ch["database"], traces_table=ch["traces_table_name"], cluster=ch["cluster_name"],
        ttl_days=int(ch["ttl"] // 86400) if ch["ttl"] else 0,
        max_attributes=limits["max_attributes"], max_attribute_length=limits["max_attribute_length"],
        max_events=limits["max_events"], max_links=limits["max_links"],
        provided_cost_wins=ch["pricing"]["provided_cost_wins"],
        drop_attribute_patterns=tuple(str(p) for p in ch["content"]["drop_attributes"]),
        redact_attribute_patterns=tuple(str(p) for p in ch["content"]["redact_attributes"]),
    )


def load_price_book(config: CollectorConfig):
    from ..pricing import PriceBook

    overrides_file = config.get("exporters.clickhouse.pricing.overrides_file")
    try:
        return PriceBook.from_file(overrides_file) if overrides_file else PriceBook()
    except ValueError as exc:  # the message names the file, the entry and the key (docs/pricing.md)
        raise ConfigError(f"exporters.clickhouse.pricing.overrides_file: {exc}") from exc


class Collector:
    """One collector: receiver, WAL, writer, store and query API."""

    def __init__(self, config: CollectorConfig, overrides: Overrides = Overrides()) -> None:
        self.config = config
        self.overrides = overrides
        self.store_config = store_config(config, overrides)
        self.data_dir = self.store_config.data_dir
        self.stats = IngestStats()
        self.price_book = load_price_book(config)
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self._connect_stop = threading.Event()
        self.pricing: CollectorPricing | None = None
        self.wal: WriteAheadLog | None = None
        self.writers: list[SegmentWriter] = []
        self.server: OtlpGrpcServer | None = None
        self.sink: WalSink | None = None  # the one way into the WAL, shared by every receiver (gRPC, HTTP)
        self.auth = TokenAuth(bearer_tokens(config))
        self.http_server = None  # OtlpHttpServer when receivers.otlp.protocols.http is configured
        self.health_check = None  # HealthCheckServer when service.extensions lists health_check
        self._accepting = False  # between a complete start and the beginning of stop: what health_check reports
        self.forwarders: list = []
        from .telemetry import CollectorMetrics

        self.metrics = CollectorMetrics(self)
        self.api = None
        from .feed import FeedHub, FeedSettings

        self.feed = FeedHub(self, FeedSettings.from_config(config))  # the live feed (collector/feed/)
        from .alerts.evaluator import BudgetEvaluator

        self.budgets = BudgetEvaluator(self, config)  # budgets and alerts (collector/alerts/); checks its config now
        self.store_error = ""
        self._lock = None

    # -- storage, possibly late ------------------------------------------------------
    def store(self) -> Store | None:
        """The store once it is reachable and migrated; None until then."""
        return self._store

    def _connect_store(self) -> bool:
        try:
            store = Store(self.store_config)
            if self.config.get("exporters.clickhouse.create_schema"):
                migrate(store.writer, store.options)
            pricing = CollectorPricing(store, self.price_book)
            pricing.refresh()
            pricing.adopt_parked_spans()
        except StoreUnavailable as exc:
            self.store_error = str(exc)
            if self.store_config.embedded and "another process" in str(exc):
                raise
            return False
        except Exception as exc:  # a server that is down or refusing
            self.store_error = f"{self.store_config.describe()}: {exc}"
            return False
        with self._store_lock:
            self._store, self.pricing = store, pricing
        self.store_error = ""
        log.info("storing into %s", self.store_config.describe())
        return True

    def _connect_loop(self) -> None:
        backoff = self._backoff()
        attempt = 0
        while not self._connect_stop.is_set() and not self._connect_store():
            delay = backoff.delay(attempt)
            attempt += 1
            log.warning("storage not available (%s); retrying in %.1fs — spans are kept in the WAL meanwhile",
                        self.store_error, delay)
            self._connect_stop.wait(delay)

    def _backoff(self) -> Backoff:
        retry = self.config.get("exporters.clickhouse.retry_on_failure")
        return Backoff(initial_s=retry["initial_interval"], max_s=retry["max_interval"])

    def _price_segment(self, store: Store, segment) -> None:
        """Before a segment is loaded: publish the prices of every model its spans name."""
        pairs = segment.pairs if segment.pairs is not None else model_pairs(segment.path.read_bytes())
        try:
            self.stats.models_priced += self.pricing.publish_pairs(pairs)
        except Exception as exc:  # the store refused the price rows: load nothing unpriced, retry later
            raise StoreUnavailable(f"publishing prices before segment {segment.path.name} failed: {exc}") from exc

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> None:
        self._check_exposure()
        self._bind_health_check()
        self._lock = lock_data_dir(self.data_dir)
        wal_cfg = self.config.get("exporters.clickhouse.wal")
        batch = self.config.get("processors.batch")
        self.wal = WriteAheadLog(
            self.data_dir / "wal",
            max_bytes=wal_cfg["max_size_mib"] << 20,
            segment_max_bytes=wal_cfg["segment_max_mib"] << 20,
            segment_max_spans=self._segment_spans(batch["send_batch_size"]),
            segment_max_age_s=batch["timeout"],
            retain_done_bytes=wal_cfg["retain_done_mib"] << 20,
            fsync=wal_cfg["fsync"],
            instance=instance_id(self.data_dir),
        )
        if not self._connect_store():
            threading.Thread(target=self._connect_loop, name="spanledger-store-connect", daemon=True).start()
        limiter = self.config.get("processors.memory_limiter")
        self.admission = AdmissionControl(limiter["limit_mib"] << 20, limiter["check_interval"])
        consumers = max(1, self.config.get("exporters.clickhouse.sending_queue.num_consumers"))
        self.feed.start()
        self.writers = [SegmentWriter(self.wal, self.store, self.stats, self._backoff(), before_load=self._price_segment,
                                      admission=self.admission, batch_ids=self.feed.new_batch,
                                      on_stored=self.feed.segment_stored)
                        for _ in range(consumers)]
        for writer in self.writers:
            writer.start()
        self.budgets.start()
        self.sink = WalSink(self.wal, self.admission, self.stats)
        from .forward import forwarders_from_config

        self.forwarders = forwarders_from_config(self.config, self.wal, self.data_dir)
        for forwarder in self.forwarders:
            forwarder.start()
        self._start_api()
        self._start_receiver()
        self._write_runtime_file()
        self.retention_job = ContentRetention(self)
        self.retention_job.start()
        self._accepting = True
        if self.health_check:
            self.health_check.start()
            log.info("health_check on %s%s", self.health_check.url, self.config.get("extensions.health_check.path"))

    def _bind_health_check(self) -> None:
        """Bound before anything starts, so a port in use stops start-up with nothing to undo."""
        if not self.config.extension_enabled("health_check"):
            return
        from .serve.health_check import HealthCheckServer

        cfg = self.config.get("extensions.health_check")
        try:
            self.health_check = HealthCheckServer(cfg["endpoint"], cfg["path"], self.ready)
        except (ValueError, OSError) as exc:
            raise ConfigError(f"extensions.health_check.endpoint: cannot listen on {cfg['endpoint']!r}: "
                              f"{getattr(exc, 'strerror', None) or exc}") from None

    def ready(self) -> bool:
        """Started, not stopping, and the store reachable: what extensions.health_check answers 200 for."""
        return self._accepting and self._store is not None

    def _segment_spans(self, wanted: int) -> int:
        """Segments small enough that every writer's insert fits the embedded engine's memory."""
        if not self.store_config.embedded:
            return wanted
        writers = max(1, self.config.get("exporters.clickhouse.sending_queue.num_consumers"))
        spans = self.store_config.memory.segment_spans(wanted, writers)
        if spans < wanted:
            log.info("WAL segments of at most %d spans (not %d): %d inserts of ~%d KiB/span fit the engine's %d MiB",
                     spans, wanted, writers, INSERT_BYTES_PER_SPAN >> 10, self.store_config.memory.budget_mib)
        return spans

    def _start_receiver(self) -> None:
        grpc_cfg = self.config.get("receivers.otlp.protocols.grpc")
        tls = None
        if grpc_cfg["tls"]["cert_file"]:
            tls = TlsFiles(Path(grpc_cfg["tls"]["cert_file"]), Path(grpc_cfg["tls"]["key_file"]),
                           Path(grpc_cfg["tls"]["client_ca_file"]) if grpc_cfg["tls"]["client_ca_file"] else None)
        settings = ReceiverSettings(
            endpoint=self.overrides.grpc_endpoint or grpc_cfg["endpoint"],
            max_message_bytes=grpc_cfg["max_recv_msg_size_mib"] << 20,
            workers=grpc_cfg["max_concurrent_streams"],
            tls=tls,
            auth=self.auth,
        )
        steps = ExportSteps(self.sink, settings.auth, settings.time_bounds, self._count_rejected,
                            on_finished=self.metrics.observe_export)
        self.server = OtlpGrpcServer(TraceExportHandler(self.sink, settings, steps=steps), settings)
        self.server.start()
        log.info("receiving OTLP/gRPC on %s", self.server.address)
        if self.overrides.http_endpoint or self.config.http_enabled():
            self._start_http_receiver(steps)

    def _start_http_receiver(self, steps: ExportSteps) -> None:
        from .ingest.http_receiver import HttpReceiverSettings, OtlpHttpServer

        http_cfg = self.config.get("receivers.otlp.protocols.http")
        settings = HttpReceiverSettings(
            endpoint=self.overrides.http_endpoint or http_cfg["endpoint"],
            traces_url_path=http_cfg["traces_url_path"],
            max_request_body_bytes=http_cfg["max_request_body_size"],
            max_concurrent_requests=max(1, http_cfg["max_concurrent_requests"]),
            read_timeout_s=http_cfg["read_timeout"] or 30.0,
            cors_allowed_origins=tuple(str(o) for o in http_cfg["cors"]["allowed_origins"]),
            cors_allowed_headers=tuple(str(h) for h in http_cfg["cors"]["allowed_headers"]),
            cors_max_age_s=http_cfg["cors"]["max_age"],
            tls_cert_file=http_cfg["tls"]["cert_file"], tls_key_file=http_cfg["tls"]["key_file"],
        )
        self.http_server = OtlpHttpServer(steps, settings)
        self.http_server.start()
        log.info("receiving OTLP/HTTP on %s%s", self.http_server.url, settings.traces_url_path)

    def _count_rejected(self, n: int) -> None:
        self.stats.spans_rejected += n

    def _check_exposure(self) -> None:
        """No listener beyond this machine without a token, unless the operator explicitly allows it."""
        from .serve.app import ApiSettings, InsecureExposure, check_exposure

        ApiSettings.from_config(self.config.get("extensions.spanledger_api"))  # bad API settings stop start-up here

        allow = self.overrides.allow_insecure_remote or self.config.get("extensions.spanledger_api.allow_insecure_remote")
        try:
            check_exposure(self.api_endpoint, self.auth, allow, "the HTTP API")
            check_exposure(self.overrides.grpc_endpoint or self.config.get("receivers.otlp.protocols.grpc.endpoint"),
                           self.auth, allow, "the OTLP/gRPC receiver")
        except (InsecureExposure, ValueError) as exc:
            raise ConfigError(str(exc)) from None
        if not self.auth.enabled:
            log.warning("AUTHENTICATION IS OFF: anyone who can reach the listeners can send spans and read them all "
                        "(configure extensions.bearertokenauth to require tokens)")

    @property
    def api_endpoint(self) -> str:
        return self.overrides.api_endpoint or self.config.get("extensions.spanledger_api.endpoint")

    @property
    def retention(self) -> dict[str, int]:
        """Days each tier is kept (0 = forever): spans, content, rollups (for reports: which tier can answer)."""
        from .store.retention import retention_days

        return retention_days(self.config.get("exporters.clickhouse"))

    def _start_api(self) -> None:
        from .serve.app import ApiServer, ApiSettings, create_app

        api_cfg = self.config.get("extensions.spanledger_api")
        tls = (api_cfg["tls"]["cert_file"], api_cfg["tls"]["key_file"]) if api_cfg["tls"]["cert_file"] else None
        settings = ApiSettings.from_config(api_cfg)
        self.api = ApiServer(create_app(self, self.auth, settings), self.api_endpoint, settings, tls=tls)
        self.api.start()
        log.info("HTTP API on %s", self.api.url)

    def _write_runtime_file(self) -> None:
        info = {"pid": os.getpid(), "grpc": self.server.address if self.server else "",
                "http": self.http_server.url if self.http_server else "",
                "api": self.api.url if self.api else ""}
        write_private(self.data_dir / RUNTIME_FILE, json.dumps(info).encode())

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Graceful: refuse new calls, finish those in flight, store everything durable. True if drained.

        Bounded by ``timeout_s`` in total, whatever the store does: a writer stuck in a store
        call is abandoned, its segment left in the WAL for the next start."""
        deadline = time.monotonic() + timeout_s

        def left(share: float = 1.0) -> float:
            return max(0.0, (deadline - time.monotonic()) * share)

        self._accepting = False
        if self.health_check:  # first, so a load balancer stops sending while the rest drains
            self.health_check.stop()
        (self.data_dir / RUNTIME_FILE).unlink(missing_ok=True)
        if self.http_server:
            self.http_server.stop(timeout_s=min(10.0, timeout_s / 3))
        if self.server:
            self.server.stop(grace_s=min(10.0, timeout_s / 3))
        self._connect_stop.set()
        if self.wal:
            self.wal.close(timeout=min(5.0, left(0.5)))
        for writer in self.writers:
            writer.request_stop()
        for forwarder in self.forwarders:  # deliver what is sealed while the writers drain; cursors keep the rest
            forwarder.request_stop(drain_s=min(5.0, timeout_s / 3))
        drained = all([writer.stop(left(0.9)) for writer in self.writers])
        for forwarder in self.forwarders:
            forwarder.stop(timeout_s=min(10.0, left(0.3)))
        if getattr(self, "retention_job", None):
            self.retention_job.stop()
        self.budgets.stop()
        self.feed.stop()
        if self.api:
            self.api.stop()
        stuck = [w for w in self.writers if w.is_alive()]
        if stuck:
            # closing the engine under a call in progress could block, so it closes once those
            # calls return: an embedding process (or a test run) can then open another store
            log.warning("%d segment writer(s) still inside a store call at shutdown; their segments stay "
                        "in the WAL and are stored at the next start", len(stuck))
            if self._store:
                threading.Thread(target=self._close_store_after, args=(stuck, self._store),
                                 name="spanledger-close-store", daemon=True).start()
        elif self._store:
            self._store.close()
        if self._lock:
            self._lock.close()
        return drained

    @staticmethod
    def _close_store_after(writers: list, store) -> None:
        for writer in writers:
            writer.join()
        store.close()

    def stats_snapshot(self) -> dict:
        snapshot = dict(vars(self.stats))
        if self.wal:
            snapshot.update(wal_unstored_bytes=self.wal.unstored_bytes, wal_pending_segments=self.wal.pending_segments(),
                            wal_corrupt_records=self.wal.corrupt_records)
        snapshot.update(self.feed.stats(), **self.budgets.counters)
        snapshot["store"] = self.store_config.describe()
        snapshot["store_ready"] = self._store is not None
        snapshot["store_error"] = self.store_error
        snapshot["forwarding"] = {f.destination: {**vars(f.stats), "segments_behind": f.segments_behind}
                                  for f in self.forwarders}
        return snapshot
