"""A worker's own metrics endpoint (WORKER_METRICS_PORT, config/metrics_api.py): the same
Prometheus text as /metrics, for METRICS_TOKEN only, over a real HTTP connection."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from pytest_django import Settings

from config import metrics
from config.metrics_api import worker_metrics_serve
from tests.support.stack import free_port

TOKEN = "w" * 8 + "orker-metrics-token-for-the-tests-0123456789abcdef"


@pytest.fixture
def endpoint(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    settings.METRICS_TOKEN = TOKEN
    port = free_port()
    server = worker_metrics_serve(port, host="127.0.0.1")
    assert server is not None
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_worker_serves_its_metrics_for_the_metrics_token_only(endpoint: str) -> None:
    metrics.rate_limit_refused("minute")

    status, text = get(f"{endpoint}/metrics", TOKEN)
    assert status == 200
    assert 'chat_rate_limit_refusals_total{limit="minute"}' in text

    assert get(f"{endpoint}/metrics")[0] == 401
    assert get(f"{endpoint}/metrics", "a-staff-or-wrong-token")[0] == 401
    assert get(f"{endpoint}/other", TOKEN)[0] == 404


def test_without_a_metrics_token_the_worker_serves_nothing(settings: Settings) -> None:
    settings.METRICS_TOKEN = ""
    assert worker_metrics_serve(free_port(), host="127.0.0.1") is None
