"""The store: one clickhouse-connect client API over the embedded engine or a server.

This is the one place that knows the difference:

* **embedded** (default): chDB, the in-process ClickHouse, under a data
  directory.  clickhouse-connect's ``interface="chdb"`` client serves it; a
  sealed WAL segment is loaded with ``INSERT ... FROM INFILE`` straight from
  disk (no copy through Python).
* **server / cluster**: ``http(s)://host:8123``; the segment's bytes are the
  body of the same ``INSERT ... FORMAT Protobuf``.

Either way ClickHouse decodes the OTLP bytes (FORMAT Protobuf with
schema/otlp_wal.proto passed inline) and the ingest pipeline's materialized
views turn them into rows: see schema/900_ingest_pipeline.sql.
"""

from __future__ import annotations

import logging
import math
import queue
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from ..errors import StoreError, StoreUnavailable, engine_error_code
from .ddl import SchemaOptions

log = logging.getLogger(__name__)

WAL_MESSAGE = "WalRecord"


class QueryRejected(Exception):
    """A read query was refused by the engine; ``code`` is the engine's error code (None if it gave none)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


# Internal reads (migrations, demo, tests) run read-only too; gateway reads pass their own limits.
INTERNAL_READ_SETTINGS = {"readonly": 1}


# What one segment insert takes in the embedded engine, measured with bench/payloads.py spans
# (GenAI spans, ~750 B each on the wire): ~18 KiB per span at 25k and 50k spans per segment
# (bench/README.md, "Memory").  Used to size segments so that the inserts fit the engine's budget.
INSERT_BYTES_PER_SPAN = 18 << 10
# Resident memory of a collector that has opened the embedded engine and stored nothing yet (the
# engine's code and Python's): ~370 MiB measured here.  The engine's memory tracker does not count it.
PROCESS_BASE_MIB = 384
# Below this the engine cannot drain small segments (inserts failed with MEMORY_LIMIT_EXCEEDED at
# 64 MiB); under a small ceiling the admission limiter holds intake while the engine drains.
ENGINE_FLOOR_MIB = 256


@dataclass(frozen=True)
class EngineMemory:
    """The embedded engine's memory bounds, set when the engine starts (chDB takes them as server settings).

    Without them chDB sizes itself for the machine: a global limit of 90% of RAM, 5 GiB each for
    the mark, primary-index and index-mark caches, merges up to half of RAM.  Beside an agent in a
    small container that is the OOM killer's business, so the collector derives them from its own
    ceiling (processors.memory_limiter.limit_mib): see ``for_ceiling``.  0 leaves the engine's own.
    """

    server_mib: int = 0  # max_server_memory_usage, enforced only when configured (see for_ceiling)
    budget_mib: int = 0  # what segments and the query / merge shares are sized from
    query_mib: int = 0  # max_memory_usage of each read query (the read-only handles)
    merge_mib: int = 0  # merges_mutations_memory_usage_soft_limit: no new merge above it
    cache_mib: int = 64  # mark, primary-index and index-mark caches, each

    @classmethod
    def for_ceiling(cls, limit_mib: int, server_mib: int = 0, query_mib: int = 0, merge_mib: int = 0,
                    cache_mib: int = 64) -> "EngineMemory":
        """The engine's budget is the ceiling less ``PROCESS_BASE_MIB`` (what the process holds before
        storing anything, outside the engine's own accounting) and less 1/8 for requests in flight; one
        read query at most 1/4 of it, merges at most 1/4, segments sized so the inserts fit the rest.

        The budget is a hard engine limit only when ``server_mib`` is given: what one insert needs
        grows with the segment's bytes (large attribute values take several times the ~18 KiB/span
        of GenAI spans), and a segment the engine can never fit would never be stored (measured: a
        256 MiB limit refused every 5 MB segment of 4 KB-attribute spans).  Unenforced, the sizing
        keeps typical inserts inside it and the admission limiter holds intake at the ceiling."""
        budget = server_mib or max(limit_mib - PROCESS_BASE_MIB - limit_mib // 8, ENGINE_FLOOR_MIB)
        return cls(server_mib=server_mib, budget_mib=budget, query_mib=query_mib or max(budget // 4, 32),
                   merge_mib=merge_mib or max(budget // 4, 32), cache_mib=cache_mib)

    def chdb_options(self) -> dict[str, str]:
        options = {}
        if self.server_mib:
            options["max_server_memory_usage"] = str(self.server_mib << 20)
        if self.merge_mib:
            options["merges_mutations_memory_usage_soft_limit"] = str(self.merge_mib << 20)
        if self.cache_mib:
            for cache in ("mark_cache_size", "primary_index_cache_size", "index_mark_cache_size"):
                options[cache] = str(self.cache_mib << 20)
            options["query_condition_cache_size"] = str(min(self.cache_mib, 16) << 20)
        return options

    def segment_spans(self, wanted: int, writers: int) -> int:
        """The largest segment (spans) whose inserts, one per writer, fit beside merges and one read query."""
        if not self.budget_mib:
            return wanted
        # with less room, a read query (even count()) beside two peak inserts failed on the engine's
        # total limit (measured); an insert that fails so is retried (errors.TRANSIENT_STORE_ERRORS)
        room = (self.budget_mib - self.merge_mib - self.query_mib) << 20
        fits = max(room // max(writers, 1) // INSERT_BYTES_PER_SPAN, 1000)
        return min(wanted, fits)


@dataclass(frozen=True)
class StoreConfig:
    """Where spans are stored: ``url`` for a server, else the embedded engine under ``data_dir``."""

    data_dir: Path = Path(".spanledger")
    url: str = ""
    username: str = ""
    password: str = ""
    options: SchemaOptions = field(default_factory=SchemaOptions)
    memory: EngineMemory = field(default_factory=EngineMemory)  # embedded engine only
    # server only (exporters.clickhouse.timeout): connect and send/receive timeout of each call, so an
    # unreachable or hung server fails an attempt (and the WAL keeps the spans) instead of blocking; 0: the library's
    timeout_s: float = 30.0

    @property
    def embedded(self) -> bool:
        return not self.url

    @property
    def engine_path(self) -> Path:
        return self.data_dir / "clickhouse"

    def describe(self) -> str:
        if self.embedded:
            return f"embedded ClickHouse (chDB) at {self.engine_path}"
        parts = urlsplit(self.url)
        return f"ClickHouse server {parts.scheme}://{parts.hostname}:{parts.port or 8123}"


def _wal_schema_text() -> str:
    return resources.files("spanledger.schema").joinpath("otlp_wal.proto").read_text(encoding="utf-8")


def _import_clickhouse_connect():
    try:
        import clickhouse_connect
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("the collector needs its extra: pip install 'spanledger[collector]'") from exc
    return clickhouse_connect


class Store:
    """Clients for writing (ingest, DDL) and for read-only queries, on one engine."""

    def __init__(self, config: StoreConfig) -> None:
        self.config = config
        self.options = config.options
        self._wal_schema = _wal_schema_text()
        self._write_lock = threading.Lock()
        self.writer = self._connect()
        # A server cannot read the collector's files, so it gets each segment as the
        # INSERT's body; the embedded engine reads the file where it lies.
        self.segments_as_body = not config.embedded
        self._loader_local = threading.local()  # each segment writer thread inserts on its own handle
        self._loaders: list[Any] = []
        # Reads never share a handle with ingest: each query takes a reader of its own
        # from this pool, so a long read neither waits for nor blocks another, and a
        # cancelled read touches no writer.
        self._readers: queue.SimpleQueue = queue.SimpleQueue()
        self._all_readers: list[Any] = []
        self._readers_lock = threading.Lock()
        self._control = None  # issues KILL QUERY for cancel(); never used for a caller's SQL
        self._control_lock = threading.Lock()
        # Set by close(). The embedded engine stays open while any handle lives, so a thread
        # that reads after close (a feed poll, a budget check finishing late) must not open a new one.
        self._closed = False

    def user_files_dir(self) -> Path:
        """An empty directory inside the data dir, the embedded engine's file root.

        Measured: chDB runs as clickhouse-local and does not confine file() or
        INTO OUTFILE to it (absolute paths still work).  The gateway's allow-list
        is what keeps those out; this only keeps relative paths away from the data."""
        path = self.config.data_dir / "user_files"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _connect(self):
        if getattr(self, "_closed", False):
            raise StoreUnavailable(f"{self.config.describe()} is closed: the collector is stopping")
        cc = _import_clickhouse_connect()
        if self.config.embedded:
            self.config.engine_path.mkdir(parents=True, exist_ok=True)
            for private in (self.config.data_dir, self.config.engine_path):  # the engine's files hold spans
                os.chmod(private, 0o700)
            try:
                # every handle passes the same options: the first one to open the engine sets them
                return cc.get_client(interface="chdb", path=str(self.config.engine_path),
                                     chdb_options={"user_files_path": str(self.user_files_dir()),
                                                   **self.config.memory.chdb_options()})
            except Exception as exc:
                if "already initialized with path" in str(exc):
                    raise StoreUnavailable(
                        f"this process already has another embedded store open, so it cannot open "
                        f"{self.config.engine_path} (chDB opens one data path per process: stop the other "
                        "collector in this process first, or run this one in its own process)") from exc
                if "lock" in str(exc).lower() or "Error initializing EmbeddedServer" in str(exc):
                    raise StoreUnavailable(
                        f"the embedded store at {self.config.engine_path} is open in another process "
                        "(only one process may open it: stop that process, or query it through the collector's API)"
                    ) from exc
                raise
        parts = urlsplit(self.config.url)
        try:
            return cc.get_client(
                host=parts.hostname or "localhost",
                port=parts.port or (8443 if parts.scheme == "https" else 8123),
                secure=parts.scheme == "https",
                username=self.config.username or parts.username or "default",
                password=self.config.password or parts.password or "",
                **self._timeouts(),
            )
        except Exception as exc:
            raise StoreUnavailable(f"cannot reach {self.config.describe()}: {exc}") from exc

    def _timeouts(self) -> dict[str, int]:
        if not self.config.timeout_s:
            return {}
        seconds = max(1, math.ceil(self.config.timeout_s))  # clickhouse-connect takes whole seconds
        return {"connect_timeout": seconds, "send_receive_timeout": seconds}

    # -- ingest -------------------------------------------------------------------
    def _protobuf_settings(self, dedup_token: str) -> dict[str, Any]:
        return {
            "format_schema": self._wal_schema,
            "format_schema_source": "string",
            "format_schema_message_name": WAL_MESSAGE,
            "insert_deduplication_token": dedup_token,
            "insert_deduplicate": 1,
            "deduplicate_blocks_in_dependent_materialized_views": 1,
            "parallel_view_processing": 1,  # the rollups and lookup views of one insert run side by side
            # a segment whose spans cover more than 100 days (a backfill) would otherwise fail on
            # every retry; it makes one part per day, which merges absorb
            "throw_on_max_partitions_per_insert_block": 0,
            "output_format_json_escape_forward_slashes": 0,  # kvlist and array values as JSON: "a/b" stays "a/b"
            # one WAL segment is one block, so its dedup token covers it whole
            "max_insert_block_size": 1 << 30,
            "min_insert_block_size_rows": 0,
            "min_insert_block_size_bytes": 0,
        }

    def load_segment(self, path: Path, dedup_token: str, ingest_batch: int = 0) -> None:
        """Store every span of a sealed WAL segment; a repeat with the same token stores nothing.

        ``ingest_batch`` is written on each row (IngestBatch) so the live feed can find them.
        Raises StoreError with the engine's code: ``permanent`` when these bytes will be refused on
        every retry (the caller splits the segment), else StoreUnavailable (retry later)."""
        table = f"{self.options.database}.spanledger_otlp_raw"
        settings = self._protobuf_settings(dedup_token)
        if ingest_batch:
            settings["log_comment"] = f"spanledger_ingest_batch={int(ingest_batch)}"
        loader = self._loader()
        try:
            if self.segments_as_body:
                loader.raw_insert(table, insert_block=path.read_bytes(), fmt="Protobuf", settings=settings)
            else:
                quoted = str(path).replace("\\", "\\\\").replace("'", "\\'")
                loader.command(f"INSERT INTO {table} FROM INFILE '{quoted}' FORMAT Protobuf", settings=settings)
        except Exception as exc:
            code = engine_error_code(exc)
            message = f"storing WAL segment {path.name} in {self.config.describe()} failed: {str(exc)[:2000]}"
            error = StoreError(message, code)
            raise (error if error.permanent else StoreUnavailable(message, code)) from exc

    def _loader(self):
        client = getattr(self._loader_local, "client", None)
        if client is None:
            client = self._loader_local.client = self._connect()
            self._loaders.append(client)
        return client

    def command(self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None):
        with self._write_lock:
            return self.writer.command(sql, parameters=parameters, settings=settings)

    def write_query(self, sql: str, parameters: dict[str, Any] | None = None):
        with self._write_lock:
            return self.writer.query(sql, parameters=parameters)

    def insert_rows(self, table: str, rows: list[list[Any]], columns: list[str]) -> None:
        with self._write_lock:
            self.writer.insert(f"{self.options.database}.{table}", rows, column_names=columns)

    # -- reading --------------------------------------------------------------------
    @contextmanager
    def _reader(self) -> Iterator[Any]:
        if self._closed:
            raise StoreUnavailable(f"{self.config.describe()} is closed: the collector is stopping")
        try:
            client = self._readers.get_nowait()
        except queue.Empty:
            with self._readers_lock:  # under the lock close() takes, so no handle is opened behind it
                client = self._connect()
                self._all_readers.append(client)
        try:
            yield client
        finally:
            self._readers.put(client)

    def read(self, sql: str, parameters: dict[str, Any], settings: dict[str, Any]):
        """Run one SELECT on a reader of its own, with per-query ``settings``; parameters bound by the engine.

        Raises QueryRejected (with the engine's code) or StoreUnavailable."""
        with self._reader() as client:
            try:
                result = client.query(sql, parameters=parameters, settings=settings)
                if not result.column_names and not result.result_rows:
                    _name_empty_columns(client, result, sql, parameters, settings)
                return result
            except Exception as exc:
                raise _read_error(exc, self.config) from exc

    @contextmanager
    def read_stream(self, sql: str, parameters: dict[str, Any], settings: dict[str, Any]):
        """Like read(), but yields an iterator of row blocks; the reader is held until the block iterator closes."""
        with self._reader() as client:
            try:
                context = client.query_row_block_stream(sql, parameters=parameters, settings=settings)
            except Exception as exc:
                raise _read_error(exc, self.config) from exc
            with context as blocks:
                yield _guarded_blocks(blocks, self.config)

    def cancel(self, marker: str) -> int:
        """Cancel the running queries tagged ``marker`` (their log_comment); returns how many were found."""
        with self._control_lock:
            if self._control is None:
                self._control = self._connect()
            result = self._control.query(
                "KILL QUERY WHERE Settings['log_comment'] = {marker:String} ASYNC", parameters={"marker": marker})
        return len(result.result_rows)

    def query(self, sql: str, parameters: dict[str, Any] | None = None, tenant: str | None = None):
        """Run one read-only statement for a trusted internal caller (migrations, demo, tests, the local CLI).

        Request paths go through ``spanledger.collector.query.run_query`` instead, which checks the
        SQL, scopes it to the caller's tenant and bounds it."""
        if tenant is not None:
            raise ValueError("Store.query is for internal callers; tenant queries go through query.run_query")
        sql = sql.strip().rstrip(";").strip()
        if not sql:
            raise QueryRejected("empty query: give one SELECT statement")
        try:
            settings = dict(INTERNAL_READ_SETTINGS)
            if self.config.embedded and self.config.memory.query_mib:  # internal reads share the query budget
                settings["max_memory_usage"] = int(self.config.memory.query_mib) << 20
            return self.read(sql, parameters or {}, settings)
        except QueryRejected as exc:
            raise QueryRejected(_engine_message(exc, "the query failed"), exc.code) from exc

    def _bound_queries(self, reader) -> None:
        """Each read query on ``reader`` may use at most the configured memory (set before readonly)."""
        if self.config.embedded and self.config.memory.query_mib:
            reader.command(f"SET max_memory_usage = {int(self.config.memory.query_mib) << 20}")

    def close(self) -> None:
        """Close every handle; afterwards no handle can be opened, so the embedded engine really shuts."""
        self._closed = True
        with self._readers_lock:
            readers = list(self._all_readers)
        for client in (self.writer, *readers, *self._loaders, *([self._control] if self._control else [])):
            try:
                client.close()
            except Exception:  # closing is best effort
                log.debug("error closing a store client", exc_info=True)


def _read_error(exc: Exception, config: StoreConfig) -> Exception:
    """QueryRejected for an error the engine answered (it has a code), StoreUnavailable for no answer."""
    from ..query.limits import UNAVAILABLE_CODES, engine_code

    code = engine_code(exc)
    if code is None or code in UNAVAILABLE_CODES:
        if code is None and type(exc).__name__ in ("ProgrammingError", "DataError"):
            return QueryRejected(_engine_message(exc, "the query failed"), None)
        return StoreUnavailable(f"{config.describe()} did not answer the query: {str(exc)[:300]}")
    return QueryRejected(str(exc), code)


def _guarded_blocks(blocks, config: StoreConfig):
    try:
        yield from blocks
    except Exception as exc:
        raise _read_error(exc, config) from exc


def _name_empty_columns(client, result, sql: str, parameters: dict[str, Any], settings: dict[str, Any]) -> None:
    """The embedded engine answers an empty result without its columns; ask it for them.

    A caller (an API client, a report) still needs the names and types of an answer with no rows.
    ``sql`` is what was just run, so describing it reads nothing more than running it did."""
    from clickhouse_connect.datatypes.registry import get_from_name

    described = client.query(f"DESCRIBE ({sql})", parameters=parameters, settings=settings).result_rows
    result.column_names = tuple(row[0] for row in described)
    result.column_types = tuple(get_from_name(row[1]) for row in described)


def _engine_message(exc: Exception, prefix: str) -> str:
    text = str(exc)
    if "Multi-statements are not allowed" in text:
        return "only one statement is allowed: remove the ';' and everything after it"
    if "readonly" in text.lower() or "READONLY" in text:
        return "the SQL endpoint is read-only: only SELECT, SHOW, DESCRIBE, EXPLAIN and WITH queries run here"
    marker = "DB::Exception:"
    if marker in text:
        text = text.split(marker, 1)[1].strip()
    if text.startswith(f"{prefix}: "):  # already worded (a reader's error re-raised by query())
        return text[:500 + len(prefix) + 2]
    return f"{prefix}: {text[:500]}"
