"""The embedded engine opens one data path per process, so closing a store must really shut it.

A reader that finishes after close() (a feed poll, a budget check) used to open a fresh handle,
which kept the engine on its path; every later store in the process then failed to open."""

from __future__ import annotations

import threading

import pytest

from spanledger.collector.errors import StoreUnavailable
from spanledger.collector.store.backend import Store, StoreConfig


def test_a_closed_store_opens_no_new_handle_and_frees_the_engine_for_another_path(tmp_path):
    first = Store(StoreConfig(data_dir=tmp_path / "first"))
    assert first.query("SELECT 1").result_rows == [(1,)]
    first.close()
    with pytest.raises(StoreUnavailable, match="is closed"):
        first.query("SELECT 2")
    second = Store(StoreConfig(data_dir=tmp_path / "second"))
    try:
        assert second.query("SELECT 3").result_rows == [(3,)]
    finally:
        second.close()


def test_reads_racing_close_leave_nothing_open(tmp_path):
    store = Store(StoreConfig(data_dir=tmp_path / "racing"))
    outcomes: list[str] = []
    start = threading.Barrier(5)

    def read() -> None:
        start.wait()
        for _ in range(20):
            try:
                store.query("SELECT count() FROM numbers(1000)")
                outcomes.append("read")
            except StoreUnavailable:
                outcomes.append("closed")

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    store.close()
    for thread in threads:
        thread.join(30)
    assert "closed" in outcomes  # the reads after close() were refused, not served on a new handle
    other = Store(StoreConfig(data_dir=tmp_path / "after"))
    try:
        assert other.query("SELECT 1").result_rows == [(1,)]
    finally:
        other.close()


def test_a_second_path_in_one_process_is_refused_with_what_to_do(tmp_path):
    first = Store(StoreConfig(data_dir=tmp_path / "held"))
    try:
        with pytest.raises(StoreUnavailable, match="one data path per process"):
            Store(StoreConfig(data_dir=tmp_path / "other"))
    finally:
        first.close()
