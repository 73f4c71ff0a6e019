"""configure(): argument > environment > default, idempotence, disabled mode, exit flush, stats."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import spanledger
from spanledger._config import default_insecure, parse_key_values, resolve_settings
from spanledger._runtime import RUNTIME


def test_defaults() -> None:
    settings = resolve_settings({}, environ={})
    assert (settings.endpoint, settings.insecure, settings.capture_content) == ("http://localhost:4317", True, False)
    assert (settings.max_queue_size, settings.max_export_batch_size, settings.schedule_delay_millis) == (65536, 512, 1000)
    assert (settings.timeout, settings.shutdown_timeout_millis, settings.max_content_length) == (10.0, 5000, 4096)
    assert settings.service_name is None and dict(settings.headers) == {} and not settings.disabled


def test_argument_beats_environment_beats_default() -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector.example:4317",
        "OTEL_SERVICE_NAME": "env-service",
        "OTEL_BSP_MAX_QUEUE_SIZE": "1000",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "2.5",
        "SPANLEDGER_MAX_CONTENT_LENGTH": "100",
        "OTEL_RESOURCE_ATTRIBUTES": "a=1,b=2",
    }
    from_env = resolve_settings({}, environ=env)
    assert (from_env.endpoint, from_env.insecure, from_env.service_name) == (
        "https://collector.example:4317", False, "env-service",
    )  # fmt: skip
    assert (from_env.max_queue_size, from_env.timeout, from_env.max_content_length) == (1000, 2.5, 100)
    from_args = resolve_settings(
        {"endpoint": "collector:4317", "service_name": "arg-service", "max_queue_size": 5,
         "resource_attributes": {"b": "override"}, "insecure": True},
        environ=env,
    )  # fmt: skip
    assert (from_args.endpoint, from_args.service_name, from_args.max_queue_size) == ("collector:4317", "arg-service", 5)
    assert dict(from_args.resource_attributes) == {"a": "1", "b": "override"} and from_args.insecure


def test_bad_environment_values_fall_back_with_a_log(caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="spanledger"):
        settings = resolve_settings({}, environ={"OTEL_BSP_MAX_QUEUE_SIZE": "lots", "OTEL_EXPORTER_OTLP_HEADERS": "oops",
                                                  "OTEL_SDK_DISABLED": "maybe"})  # fmt: skip
    assert settings.max_queue_size == 65536 and dict(settings.headers) == {} and settings.disabled is False
    assert "OTEL_BSP_MAX_QUEUE_SIZE" in caplog.text


def test_insecure_and_key_value_parsing() -> None:
    assert default_insecure("localhost:4317") and default_insecure("http://10.0.0.5:4317")
    assert not default_insecure("collector.internal:4317") and not default_insecure("https://localhost:4317")
    assert parse_key_values("Authorization=Bearer%20abc, x-tenant = acme ,") == {"Authorization": "Bearer abc",
                                                                                 "x-tenant": "acme"}  # fmt: skip


def test_configure_is_idempotent_and_shutdown_allows_again(caplog) -> None:
    exporter = InMemorySpanExporter()
    first = spanledger.configure(service_name="idem", exporter=exporter, set_global_provider=False)
    try:
        provider = RUNTIME.provider
        assert spanledger.configure(service_name="idem", exporter=exporter, set_global_provider=False) is first
        assert RUNTIME.provider is provider
        with caplog.at_level(logging.WARNING, logger="spanledger"):
            spanledger.configure(service_name="other", exporter=exporter, set_global_provider=False)
        assert "already configured" in caplog.text and RUNTIME.provider is provider
        spanledger.product_event("one")
        spanledger.force_flush()
        assert [span.name for span in exporter.get_finished_spans()] == ["one"]
    finally:
        spanledger.shutdown()
    assert RUNTIME.provider is None
    spanledger.product_event("after_shutdown")  # a harmless no-op
    spanledger.shutdown()  # twice is fine
    second = InMemorySpanExporter()
    spanledger.configure(service_name="again", exporter=second, set_global_provider=False)
    try:
        spanledger.product_event("two")
        spanledger.force_flush()
    finally:
        spanledger.shutdown()
    assert [span.name for span in second.get_finished_spans()] == ["two"]


def test_disabled_by_environment(monkeypatch) -> None:
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    settings = spanledger.configure(exporter=InMemorySpanExporter(), set_global_provider=False)
    assert settings is not None and settings.disabled and RUNTIME.provider is None
    assert spanledger.add_span_processor(spanledger.BudgetTracker(1)) is False


def test_price_book_and_content_from_configure(tmp_path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text('[[models]]\nmodel = "house"\ninput_mtok = 1\noutput_mtok = 1\n')
    exporter = InMemorySpanExporter()
    spanledger.configure(exporter=exporter, price_book=str(prices), capture_content=True, max_content_length=3,
                         redact=str.upper, set_global_provider=False)  # fmt: skip
    try:
        with spanledger.llm_call("house", prompt="abcdef") as call:
            call.set_usage(input_tokens=1_000_000, output_tokens=0)
        spanledger.force_flush()
    finally:
        spanledger.shutdown()
    (span,) = exporter.get_finished_spans()
    assert span.attributes["spanledger.cost.total_usd"] == "1"
    assert '"content":"ABC...[truncated]"' in span.attributes["gen_ai.input.messages"]


def test_stats_shape() -> None:
    stats = spanledger.stats()
    assert set(vars(stats)) == {"spans_exported", "spans_failed", "spans_dropped", "spans_queued", "internal_errors",
                                "invalid_inputs"}  # fmt: skip


def test_spans_are_flushed_at_exit(tmp_path) -> None:
    out = tmp_path / "exported.txt"
    script = textwrap.dedent(
        f"""
        import spanledger
        from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

        class FileExporter(SpanExporter):
            def export(self, spans):
                with open({str(out)!r}, "a") as f:
                    f.writelines(span.name + "\\n" for span in spans)
                return SpanExportResult.SUCCESS

        spanledger.configure(exporter=FileExporter(), schedule_delay_millis=60_000)
        spanledger.product_event("last_words")
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    assert out.read_text() == "last_words\n"


def test_fixture_plugin_works_in_a_users_project(tmp_path) -> None:
    (tmp_path / "test_user.py").write_text(
        textwrap.dedent(
            """
            import spanledger

            def test_uses_fixture(captured_spans):
                with spanledger.tool_call("search"):
                    pass
                assert captured_spans.as_dicts()[0]["name"] == "execute_tool search"
                assert captured_spans.as_dicts()[0]["start_time"] == 1_000_000_000

            def test_does_not_use_it():
                assert True
            """
        )
    )
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)  # fmt: skip
    assert "2 passed" in result.stdout, result.stdout + result.stderr
