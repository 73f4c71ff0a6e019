"""Shared by the SQL gateway attack suites: a collector with two tenants and an operator, and HTTP helpers."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from collector_support import RawClient, make_span, new_request, token_config, wait_stored

OPERATOR = "operator-token-0123456789"
ACME = "acme-token-0123456789ab"
GLOBEX = "globex-token-0123456789"
TOKENS = {"acme": ACME, "globex": GLOBEX}
GLOBEX_SECRET = "globex-secret-span-name"
GLOBEX_TRACE = bytes.fromhex("9e" * 16)


def tenants_config(**limits) -> str:
    lines = "".join(f"        {k}: {v}\n" for k, v in (limits or {"timeout": "30s"}).items())
    return token_config(operators=(OPERATOR,), tenants=TOKENS) + f"""  spanledger_api:
    query_limits:
{lines}"""


def export_as(collector, tenant: str, names: list[str], trace_id: bytes | None = None) -> None:
    request, scope = new_request(f"{tenant}-service")
    for name in names:
        make_span(scope, name, trace_id=trace_id, attributes={"gen_ai.request.model": "gpt-4o",
                                                              "gen_ai.provider.name": "openai",
                                                              "gen_ai.usage.input_tokens": 100,
                                                              "spanledger.user.id": f"{tenant}-user"})
    client = RawClient(collector.server.address, metadata=(("authorization", f"Bearer {TOKENS[tenant]}"),))
    try:
        client.export(request.SerializeToString())
    finally:
        client.close()


def load_two_tenants(collector) -> None:
    """acme: 2 spans; globex: 3 spans in one known trace, named with a secret acme must never see."""
    export_as(collector, "acme", ["acme-0", "acme-1"])
    export_as(collector, "globex", [GLOBEX_SECRET] * 3, trace_id=GLOBEX_TRACE)
    wait_stored(collector, 5)


def post_sql(collector, token: str | None, query, parameters=None, timeout: float = 60) -> tuple[int, dict, dict]:
    """POST /v1/sql; returns (status, JSON body, headers); header names in lower case, as HTTP compares them."""
    body = {"query": query}
    if parameters is not None:
        body["parameters"] = parameters
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{collector.api.url}/v1/sql", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), {k.lower(): v for k, v in err.headers.items()}
