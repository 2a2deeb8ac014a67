"""Tracing off (config/tracing.py): without an OTLP endpoint nothing is instrumented and the
app's spans are one shared no-op. Tracing on is tested on the real stack, across processes
(tests/e2e/test_observability_e2e.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from config import tracing

REPO = Path(__file__).resolve().parents[2]


def test_without_an_endpoint_spans_are_one_shared_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in tracing.ENDPOINT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not tracing.wanted()
    assert tracing.configure("chat-test", django=True, celery=True) is False
    assert not tracing.enabled()
    first, second = tracing.span("a", {"x": 1}), tracing.span("b", kind="server")
    assert first is second
    with first as span:
        assert span is None
    tracing.annotate({"x": 1})  # nothing to annotate, and no error
    assert tracing.headers() == {}


def test_an_endpoint_asks_for_traces_and_otel_sdk_disabled_wins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert tracing.wanted()
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    assert not tracing.wanted()


def test_a_web_process_without_an_endpoint_instruments_nothing() -> None:
    """No instrumentation is imported and no tracer provider is set. (The SDK itself may be
    imported: redis-py 8 loads it for its own optional metrics.)"""
    code = (
        "import os, sys; os.environ.pop('OTEL_EXPORTER_OTLP_ENDPOINT', None); "
        "import config.asgi; from opentelemetry import trace; "
        "print(sorted(m for m in sys.modules if m.startswith('opentelemetry.instrumentation'))"
        ", type(trace.get_tracer_provider()).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO),
            "DJANGO_SETTINGS_MODULE": "tests.settings",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[] ProxyTracerProvider"
