"""Fixtures for collector tests; they live in conftest_collector.py so other test folders can share them."""

from conftest_collector import collector, collector_factory, raw_client  # noqa: F401
