"""The activity API's latency and the JSON write path's rate, on a collector filled with realistic spans.

Not a test: a measurement.  Starts a collector (embedded store, defaults but a
short batch timeout) on loopback ports, sends ``--spans`` realistic spans
(bench/payloads.py templates, spread over the last 30 days) over gRPC, then
times through the real uvicorn server:

* GET /v1/activities first page (50), a page 20 cursors deep, a filtered page
  (agent + model), a ``where=`` expression, ``detailed=true``;
* GET /v1/traces/{id} for random traces;
* POST /v1/activities/batch of 1000 JSON activities (spans/s durable), against
  the same spans sent as one OTLP/gRPC request (the reference, same run).

    .venv/bin/python -m bench.api_read --spans 200000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "collector"))


def _get(api: str, path: str, **params) -> tuple[float, dict]:
    url = api + path + ("?" + urllib.parse.urlencode(params) if params else "")
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=120) as response:
        body = json.loads(response.read())
    return (time.perf_counter() - started) * 1000, body


def _timed(fn, repeats: int) -> dict:
    times = sorted(fn() for _ in range(repeats))
    return {"p50_ms": round(statistics.median(times), 1), "p95_ms": round(times[int(len(times) * 0.95) - 1], 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    from collector_support import RawClient, start_collector, wait_stored

    from bench.payloads import make_pool

    collector = start_collector(Path(tempfile.mkdtemp(prefix="spanledger-bench-api-")) / "data")
    try:
        api = collector.api.url
        pool = make_pool(8, start_ns=time.time_ns() - 30 * 86400 * 10**9)
        client = RawClient(collector.server.address)
        sent, copy = 0, 0
        while sent < args.spans:
            template = pool[copy % len(pool)]
            client.export(template.stamp(copy + 1, shift_ns=(copy * 2_592_000 * 10**9) // max(1, args.spans // 1000)))
            sent += template.spans
            copy += 1
        wait_stored(collector, sent, timeout=600)
        results: dict = {"spans": sent}
        _, first = _get(api, "/v1/activities")
        results["first_page"] = _timed(lambda: _get(api, "/v1/activities")[0], args.repeats)
        cursor = first["next_cursor"]
        for _ in range(19):
            cursor = _get(api, "/v1/activities", cursor=cursor)[1]["next_cursor"]
        results["page_20_deep"] = _timed(lambda: _get(api, "/v1/activities", cursor=cursor)[0], args.repeats)
        sample = first["activities"][0]
        results["filtered"] = _timed(lambda: _get(api, "/v1/activities", agent=sample["agent"] or "planner",
                                                  model="gpt-4o")[0], args.repeats)
        results["where"] = _timed(lambda: _get(api, "/v1/activities",
                                               where="type:llm_call AND (cost>0.01 OR status:error)")[0], args.repeats)
        results["detailed"] = _timed(lambda: _get(api, "/v1/activities", detailed="true")[0], args.repeats)
        traces = [a["trace_id"] for a in _get(api, "/v1/activities", limit=1000)[1]["activities"]][:: 50]
        it = iter(traces * args.repeats)
        results["trace_tree"] = _timed(lambda: _get(api, f"/v1/traces/{next(it)}")[0], args.repeats)

        batch = json.dumps([{"type": "llm_call", "model": "gpt-4o", "provider": "openai", "agent": "planner",
                             "input_tokens": 1000 + i, "output_tokens": 100, "user_id": f"u-{i % 50}",
                             "duration_ms": 850.0} for i in range(1000)]).encode()
        rounds = 10
        started = time.perf_counter()
        for _ in range(rounds):
            request = urllib.request.Request(f"{api}/v1/activities/batch", data=batch)
            with urllib.request.urlopen(request, timeout=120) as response:
                assert json.loads(response.read())["accepted"] == 1000
        json_rate = rounds * 1000 / (time.perf_counter() - started)
        from spanledger.collector.ingest import activity_json as aj

        items = [aj.ActivityIn.model_validate(x) for x in json.loads(batch)]
        started = time.perf_counter()
        for _ in range(rounds):
            client.export(aj.to_request(items, "")[0].SerializeToString())
        otlp_rate = rounds * 1000 / (time.perf_counter() - started)
        results["write_json_batch_spans_per_s"] = round(json_rate)
        results["write_same_spans_otlp_grpc_spans_per_s"] = round(otlp_rate)
        results["json_over_otlp"] = round(json_rate / otlp_rate, 2)
        client.close()
        print(json.dumps(results, indent=2))
    finally:
        collector.stop(30)


if __name__ == "__main__":
    main()
