"""``spanledger feed``: follow new activities as they are stored, like ``tail -f``.

It reads GET /v1/feed of the collector running on the data directory (or
``--api-url``), reconnecting with Last-Event-ID when the connection drops, so
nothing is skipped or shown twice.  The embedded store admits one process, so
the feed needs a running collector: without one it says so and exits.
Filters are the listing filters: ``--agent planner --where 'cost>0.01'``.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..query.filters import FIELDS

NAME = "feed"
RECONNECT_S = 1.0


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="follow new activities as they are stored (through a running collector)")
    p.add_argument("--config", type=Path, help="an otel-config.yaml (to find the data dir)")
    p.add_argument("--data-dir", help="the running collector's data dir (default .spanledger)")
    p.add_argument("--api-url", help="a collector's API instead, e.g. http://localhost:4319")
    for name, spec in FIELDS.items():
        p.add_argument(f"--{name.replace('_', '-')}", dest=f"filter_{name}", action="append", metavar="VALUE",
                       help=f"only {spec.doc or name} = VALUE (repeat for any of several)")
    p.add_argument("--where", help="a filter expression, e.g. 'agent:planner AND (model:gpt-4o OR cost>0.01)'")
    p.add_argument("--room", action="append", help="project:<id>, agent:<name> or type:<activity type>")
    p.add_argument("--format", choices=("text", "json"), default="text", help="one line per activity (default text)")
    p.add_argument("--totals", action="store_true", help="also print the running totals as they arrive")
    p.add_argument("--count", type=int, default=0, help="stop after this many activities (default: follow forever)")


def feed_url(args) -> str | None:
    if args.api_url:
        return args.api_url.rstrip("/")
    from ..app import Overrides, store_config
    from ..cli import running_collector_api
    from ..config import load_config

    cfg = store_config(load_config(args.config), Overrides(data_dir=args.data_dir))
    return running_collector_api(cfg.data_dir)


def query_string(args) -> str:
    pairs = [(name, value) for name in FIELDS for value in (getattr(args, f"filter_{name}") or [])]
    if args.where:
        pairs.append(("where", args.where))
    pairs += [("room", room) for room in args.room or []]
    return urllib.parse.urlencode(pairs)


def run(args) -> int:
    base = feed_url(args)
    if not base:
        print("spanledger feed: no collector is running on this data dir. The feed follows a running collector: "
              "start `spanledger collector` (or pass --api-url http://HOST:4319)", file=sys.stderr)
        return 1
    url = f"{base}/v1/feed?{query_string(args)}"
    follower = _Follower(args)
    while True:
        headers = {"Accept": "text/event-stream"}
        token = os.environ.get("SPANLEDGER_TOKEN")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if follower.last_id:
            headers["Last-Event-ID"] = follower.last_id
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=60) as response:
                if follower.read(response):
                    return 0
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                print(f"spanledger feed: {base} does not serve /v1/feed (a collector without the live feed)",
                      file=sys.stderr)
                return 1
            try:
                message = json.loads(exc.read() or b"{}").get("error", str(exc))
            except ValueError:
                message = str(exc)
            print(f"spanledger feed: {message}", file=sys.stderr)
            if exc.code in (429, 503):
                time.sleep(RECONNECT_S * 5)
                continue
            return 2
        except (urllib.error.URLError, OSError) as exc:
            print(f"spanledger feed: connection lost ({getattr(exc, 'reason', exc)}); reconnecting", file=sys.stderr)
        time.sleep(RECONNECT_S)


class _Follower:
    """Parses the event stream and prints it; remembers the last id for reconnects."""

    def __init__(self, args) -> None:
        self.args = args
        self.last_id = ""
        self.shown = 0

    def read(self, response) -> bool:
        """Print events until the stream ends; True once --count activities were shown."""
        kind, data = "message", []
        for raw in response:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line == "":
                if data and self.show(kind, json.loads("\n".join(data))):
                    return True
                kind, data = "message", []
            elif line.startswith("id:"):
                self.last_id = line[3:].strip()
            elif line.startswith("event:"):
                kind = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip(" "))
        return False

    def show(self, kind: str, data: dict) -> bool:
        if kind == "activity":
            if self.args.format == "json":
                print(json.dumps(data), flush=True)
            else:
                print(format_activity(data), flush=True)
            self.shown += 1
            return bool(self.args.count) and self.shown >= self.args.count
        if kind == "totals" and self.args.totals:
            print(f"-- totals: {data['activities']} activities, {data['input_tokens']} in / "
                  f"{data['output_tokens']} out tokens, ${data['cost_usd']}", flush=True)
        elif kind == "alert":
            print(f"!! budget {data['budget']} crossed {data['threshold_percent']:g}% of ${data['limit_usd']}: "
                  f"spent ${data['spent_usd']}", flush=True)
        elif kind in ("reset", "dropped"):
            print(f"spanledger feed: {data['reason']}", file=sys.stderr)
        return False


def format_activity(a: dict) -> str:
    what = " ".join(x for x in (a["type"] or "-", a["name"]) if x)
    model = f" {a['model']}" if a["model"] else ""
    tokens = f" in={a['input_tokens']} out={a['output_tokens']}" if a["input_tokens"] or a["output_tokens"] else ""
    cost = f" ${a['cost_usd']}" if a["cost_usd"] not in ("0", "") else ""
    return f"{a['start_time']}  {a['agent'] or a['service']}  {what}{model}{tokens}{cost}  [{a['status']}]"
