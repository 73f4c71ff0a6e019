"""Forwarding: every accepted span also goes, unchanged, to each otlp/NAME and otlphttp/NAME exporter.

Each destination reads sealed WAL segments with its own persisted cursor
(``cursor.py``), so storage and every other destination go on at their own
pace; ``transport.py`` speaks OTLP/gRPC and OTLP/HTTP as the official
exporters do; ``forwarder.py`` is the per-destination loop (retries with
jittered backoff, bounded backlog, counters).
"""

from .forwarder import Forwarder, ForwardStats, forwarders_from_config

__all__ = ["Forwarder", "ForwardStats", "forwarders_from_config"]
