"""Hostile configuration: a file or environment can be wrong in any way, and start-up must say how.

Configuration never comes from a client, but files are hand-edited and
environment variables are set by deploy tooling.  Property: ``load_config`` on
any YAML text (and any SPANLEDGER_* value) returns a configuration or raises
ConfigError, never another exception, and the message is a sentence, not a
pydantic dump.
"""

from __future__ import annotations

import os

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spanledger.collector.config import CollectorConfig, ConfigError, env_var, load_config
from spanledger.collector.config.schema import Configuration, Section


def _leaf_paths(model: type[Section], path: tuple = ()) -> list[tuple]:
    out = []
    for name, info in model.model_fields.items():
        sub = info.annotation
        if isinstance(sub, type) and issubclass(sub, Section):
            out.extend(_leaf_paths(sub, (*path, name)))
        else:
            out.append((*path, name))
    return out


LEAVES = _leaf_paths(Configuration) + [("exporters", "otlp/x", "endpoint"), ("exporters", "otlphttp/y", "timeout"),
                                       ("exporters", "kafka/z", "endpoint"), ("exporters", "otlp/", "tls")]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                    st.sampled_from(["1s", "-5ms", "72h", "1e400", "${env:NOPE}", "${env:NOPE:-3}", "maybe",
                                     "otlp/x", "clickhouse", "health_check", "2001-02-30", "0x10", ".inf"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.one_of(st.text(max_size=8), st.integers()),
                                                                       inner, max_size=3)), max_leaves=6)


def _document(assignments: list[tuple[tuple, object]]) -> dict:
    doc: dict = {}
    for path, value in assignments:
        node = doc
        for part in path[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[path[-1]] = value
    return doc


def _check(text: str) -> None:
    try:
        config = load_config(text=text)
    except ConfigError as exc:
        message = str(exc)
        assert message and "validation error" not in message and "pydantic" not in message, message
        return
    assert isinstance(config, CollectorConfig) and isinstance(config.raw, dict)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(LEAVES).flatmap(lambda p: st.sampled_from([p, p[:-1], p[:1]])), values),
                max_size=6))
def test_any_document_near_the_schema_loads_or_names_what_is_wrong(assignments):
    try:
        text = yaml.safe_dump(_document(assignments))
    except yaml.YAMLError:
        return
    _check(text)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("abc:{}[]-,&*!|>'\"%@` \n\t#?0123456789.$/\ufeff")
                                + ["${env:", "receivers", "exporters", "otlp/x", "  ", "\n  - "]),
                max_size=40).map("".join))
def test_any_text_loads_or_names_what_is_wrong(text):
    _check(text)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(LEAVES[:-4]), st.text(max_size=30))
def test_any_environment_value_loads_or_names_its_variable(path, value):
    name = env_var(".".join(path))
    previous = os.environ.get(name)
    os.environ[name] = value.replace("\x00", "")
    try:
        load_config(text="{}")
    except ConfigError as exc:
        assert name in str(exc), str(exc)
    finally:
        if previous is None:
            del os.environ[name]
        else:
            os.environ[name] = previous


def test_deeply_nested_yaml_is_refused_with_a_message():
    _check("a: " + "[" * 5000 + "]" * 5000)
    _check("receivers: " + "{a: " * 300 + "1" + "}" * 300)
