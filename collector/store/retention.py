"""The store's only deletions: retention by tier, and an operator's clean-up (DELETE /v1/activities).

This is the one request-path module that writes to the store, so it is kept
small.  It uses the store's writer handle (run_query is read-only) and never
puts a caller's value into SQL text: times and tenants are bound by the
engine, and the only text formatted in is a partition id read back from
system.parts and checked to be eight digits.

* Raw spans and rollups expire by TTL (schema/030_retention.sql, rendered
  from exporters.clickhouse.retention).  Rollups must be kept at least as long
  as raw spans, so a report over an old range can still be answered from them.
* Captured content (prompt and output attributes) usually has the shortest
  life.  One attribute map cannot carry a TTL per key, so ``ContentRetention``
  cuts those keys from spans older than ``retention.content`` once at start
  and then daily (an ALTER UPDATE mutation, on the parts that hold such keys).
* ``delete_older_than`` drops whole days by partition (cheap, no rewrite) and
  deletes the rest with a lightweight DELETE; with a tenant it can only delete
  rows (partitions hold every tenant).  The trace rows (schema/070, each span's
  summary keyed by trace) are deleted with the same condition.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from typing import Any

from ..query.filters import FilterError, parse_time

log = logging.getLogger(__name__)

DAY_S = 86400
PARTITION_ID = re.compile(r"^\d{8}$")
AGE = re.compile(r"^\s*(\d{1,6})\s*(d|h|m)\s*$")
# Attribute keys that hold captured content (kept apart by the activity API's detailed view too). RE2 and Python alike.
CONTENT_PATTERN = (r"^(gen_ai\.(input|output)\.messages|gen_ai\.system_instructions|gen_ai\.tool\.call\."
                   r"(arguments|result)|gen_ai\.(prompt|completion)(\..*)?|llm\.(input|output)_messages\..*|"
                   r"input\.value|output\.value|spanledger\.conversation\.message|spanledger\.ticket\.changes)$")


def retention_days(ch: dict) -> dict[str, int]:
    """exporters.clickhouse.retention as whole days per tier (0 = forever), checked: rollups outlive spans,
    content does not outlive spans.  ``spans`` falls back to the exporter's ``ttl``."""
    tiers = dict(ch["retention"])
    if not tiers["spans"]:
        tiers["spans"] = ch["ttl"]
    days = {}
    for tier, seconds in tiers.items():
        if seconds and (seconds < DAY_S or seconds % DAY_S):
            raise ValueError(f"retention.{tier}: {seconds / 3600:g}h is not a whole number of days "
                             "(write whole days, e.g. 30d or 720h)")
        days[tier] = int(seconds // DAY_S)
    spans, rollups, content = days["spans"], days["rollups"], days["content"]
    if spans and rollups and rollups < spans or rollups and not spans:
        raise ValueError(f"retention.rollups ({rollups}d) must be at least retention.spans "
                         f"({spans or 'forever'}): reports over old ranges are answered from the rollups")
    if spans and content and content > spans:
        raise ValueError(f"retention.content ({content}d) cannot outlive retention.spans ({spans}d)")
    return days


def parse_cutoff(text: str) -> dt.datetime:
    """An age ('30d', '12h', '90m') or a time (ISO 8601, Unix s/ms); it must be in the past."""
    now = dt.datetime.now(dt.timezone.utc)
    match = AGE.match(text)
    if match:
        unit = {"d": "days", "h": "hours", "m": "minutes"}[match.group(2)]
        cutoff = now - dt.timedelta(**{unit: int(match.group(1))})
    else:
        cutoff = parse_time(text, "older_than")
    if cutoff > now:
        raise FilterError(f"older_than: {text!r} is in the future; nothing newer than now can be cleaned up")
    return cutoff


def delete_older_than(collector, cutoff: dt.datetime, tenant: str | None) -> dict[str, Any]:
    """Delete spans that started before ``cutoff`` (one tenant's, or all); rollups are kept."""
    from . import StoreUnavailable

    store = collector.store()
    if store is None:
        raise StoreUnavailable("the store is not reachable yet; retry shortly")
    options = store.options
    table = f"{options.database}.{options.storage_table}"
    on_cluster = f" ON CLUSTER {options.cluster}" if options.cluster else ""
    naive = cutoff.astimezone(dt.timezone.utc).replace(tzinfo=None)
    before = {"cutoff": naive}
    dropped: list[str] = []
    deleted = 0
    if tenant is None:
        parts = store.write_query(
            "SELECT partition_id, any(partition), sum(rows) FROM system.parts WHERE database = {db:String} "
            "AND table = {t:String} AND active GROUP BY partition_id",
            {"db": options.database, "t": options.storage_table}).result_rows
        whole_days = [(pid, day, rows) for pid, day, rows in parts
                      if PARTITION_ID.match(pid) and dt.date.fromisoformat(str(day)) < naive.date()]
        for pid, day, rows in sorted(whole_days):
            # the id comes from system.parts and is checked to be eight digits: nothing from the caller
            store.command(f"ALTER TABLE {table}{on_cluster} DROP PARTITION ID '{pid}'")
            store.command(f"ALTER TABLE {table}_trace_id_ts{on_cluster} DROP PARTITION ID '{pid}'")
            dropped.append(str(day))
            deleted += int(rows)
        condition = "Timestamp < {cutoff:DateTime64(9)}"
    else:
        condition = "TenantId = {tenant:String} AND Timestamp < {cutoff:DateTime64(9)}"
        before["tenant"] = tenant
    remaining = store.write_query(f"SELECT count() FROM {table} WHERE {condition}", before).result_rows[0][0]
    if remaining:
        store.command(f"DELETE FROM {table}{on_cluster} WHERE {condition}", before,
                      settings={"lightweight_deletes_sync": 2})
        deleted += int(remaining)
    # the trace rows (schema/070) hold each span's summary: they go with the spans (monthly parts: rows, not days)
    if store.write_query(f"SELECT count() FROM {table}_trace_rows WHERE {condition}", before).result_rows[0][0]:
        store.command(f"DELETE FROM {table}_trace_rows{on_cluster} WHERE {condition}", before,
                      settings={"lightweight_deletes_sync": 2})
    log.info("retention clean-up: deleted %d spans older than %s%s (%d whole days dropped)", deleted,
             cutoff.isoformat(), f" of tenant {tenant!r}" if tenant else "", len(dropped))
    return {"older_than": cutoff.isoformat(), "tenant": tenant, "dropped_partitions": dropped, "deleted_rows": deleted}


def purge_content(store, days: int) -> None:
    """Cut captured-content attributes from spans older than ``days`` (a mutation over the parts that hold them)."""
    options = store.options
    table = f"{options.database}.{options.storage_table}"
    on_cluster = f" ON CLUSTER {options.cluster}" if options.cluster else ""
    store.command(
        f"ALTER TABLE {table}{on_cluster} UPDATE SpanAttributes = mapFilter((k, v) -> NOT match(k, {{p:String}}), "
        "SpanAttributes) WHERE Timestamp < now64(9) - toIntervalDay({days:UInt32}) "
        "AND arrayExists(k -> match(k, {p:String}), mapKeys(SpanAttributes))",
        {"p": CONTENT_PATTERN, "days": days})


class ContentRetention:
    """Runs ``purge_content`` once the store is up, then daily, when retention.content is set."""

    def __init__(self, collector, interval_s: float = DAY_S) -> None:
        self.collector = collector
        self.days = retention_days(collector.config.get("exporters.clickhouse"))["content"]
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spanledger-content-retention", daemon=True)

    def start(self) -> None:
        if self.days:
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            store = self.collector.store()
            if store is None:
                self._stop.wait(5)
                continue
            try:
                purge_content(store, self.days)
            except Exception:  # noqa: BLE001 - logged; the next day tries again
                log.exception("cutting captured content older than %d days failed", self.days)
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
