"""The write-ahead log: group commit, sealing, recovery, corruption."""

from __future__ import annotations

import threading

import pytest

from spanledger.collector.wal import WalFull, WriteAheadLog, encode_record, request_fingerprint, scan


def _records(n: int, size: int = 100) -> list[bytes]:
    return [bytes([i % 251]) * size for i in range(n)]


def test_records_round_trip_with_tenant():
    data = b"".join(encode_record(r, "acme" if i % 2 else "") for i, r in enumerate(_records(5)))
    result = scan(data)
    assert [r.request for r in result.records] == _records(5)
    assert [r.tenant for r in result.records] == ["", "acme", "", "acme", ""]
    assert result.corrupt == 0 and not result.torn_tail


def test_corrupt_record_is_skipped_counted_and_the_rest_recovered(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_max_age_s=60)
    for r in _records(10, 300):
        wal.append(encode_record(r, ""), 1)
    wal.close()
    segment = next(tmp_path.glob("*.wal"))
    data = bytearray(segment.read_bytes())
    data[5 * 305 + 50] ^= 0xFF  # flip a byte inside the sixth record
    segment.write_bytes(bytes(data) + b"\x85\x02partial")  # and a torn tail
    reopened = WriteAheadLog(tmp_path, segment_max_age_s=60)
    assert reopened.corrupt_records == 1 and reopened.torn_tails == 1
    recovered = list(reopened.iter_unstored_records())
    expected = _records(10, 300)
    assert [r.request for r in recovered] == expected[:5] + expected[6:]
    assert reopened.recovered_fingerprints == [request_fingerprint(r, "") for r in expected[:5] + expected[6:]]
    reopened.close()


def test_concurrent_appends_are_all_durable_and_sealed_in_order(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_max_spans=50, segment_max_age_s=60)
    payloads = _records(200, 50)
    threads = [threading.Thread(target=lambda p=p: wal.append(encode_record(p, ""), 1)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wal.close()
    seen = []
    for path in sorted(tmp_path.glob("*.wal")):
        seen.extend(r.request for r in scan(path.read_bytes()).records)
    assert sorted(seen) == sorted(payloads)


def test_full_log_refuses_instead_of_dropping(tmp_path):
    wal = WriteAheadLog(tmp_path, max_bytes=1000, segment_max_age_s=60)
    wal.append(encode_record(b"x" * 600, ""), 1)
    with pytest.raises(WalFull):
        wal.append(encode_record(b"y" * 600, ""), 1)
    wal.close()


def test_stored_segments_are_kept_for_duplicate_detection_then_expired(tmp_path):
    wal = WriteAheadLog(tmp_path, segment_max_age_s=0.05, retain_done_bytes=250)
    for r in _records(3, 100):
        wal.append(encode_record(r, ""), 1)
        segment = wal.next_sealed(timeout=2)
        wal.mark_stored(segment)
    wal.close()
    assert len(list(tmp_path.glob("*.done"))) == 2  # the oldest expired
    reopened = WriteAheadLog(tmp_path)
    assert reopened.recovered_fingerprints == [request_fingerprint(r, "") for r in _records(3, 100)[1:]]
    assert wal.unstored_bytes == 0
    reopened.close()


def test_store_errors_are_classified_by_engine_code_not_by_message_text():
    from spanledger.collector.errors import StoreError, engine_error_code

    outage = Exception("connection refused while sending INSERT INTO spanledger.spanledger_otlp_raw FORMAT Protobuf "
                       "(CANNOT_PARSE_TEXT in the query text must not matter)")
    damaged = Exception("Code: 33. DB::Exception: Attempt to read after eof: While executing "
                        "ProtobufRowInputFormat. (ATTEMPT_TO_READ_AFTER_EOF) (version 26.9.2.1)")
    overflow = Exception("HTTPDriver received ClickHouse error code 407\n Code: 407. DB::Exception: Decimal math "
                         "overflow: while pushing to view spanledger.spanledger_store_mv. (DECIMAL_OVERFLOW)")
    busy = Exception("Code: 252. DB::Exception: Too many parts (300). (TOO_MANY_PARTS)")
    odd = Exception("Code: 1234. DB::Exception: something new")
    errors = {name: StoreError(str(e), engine_error_code(e))
              for name, e in [("outage", outage), ("damaged", damaged), ("overflow", overflow), ("busy", busy),
                              ("odd", odd)]}
    assert {n: (e.code, e.permanent, e.transient) for n, e in errors.items()} == {
        "outage": (None, False, True), "damaged": (33, True, False), "overflow": (407, True, False),
        "busy": (252, False, True), "odd": (1234, False, False)}
