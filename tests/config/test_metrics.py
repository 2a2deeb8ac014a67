"""`GET /metrics`: who may read it, its Prometheus text, the events it counts, and the merge of
several processes' samples (prometheus-client's multiprocess mode) with dead processes'
connection gauges left out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pytest_django import Settings

from accounts.models import User
from accounts.services import token_issue
from config import metrics

REPO = Path(__file__).resolve().parents[2]
METRICS_TOKEN = "m" * 8 + "etrics-token-for-the-tests-0123456789abcdef"


def scrape(authorization: str | None = None) -> object:
    headers = {"HTTP_AUTHORIZATION": authorization} if authorization else {}
    return Client().get("/metrics", **headers)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture(autouse=True)
def one_process(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.delenv(metrics.MULTIPROCESS_DIR_VARIABLE, raising=False)
    settings.METRICS_TOKEN = METRICS_TOKEN


def test_without_credentials_it_is_401_with_a_bearer_challenge() -> None:
    response = scrape()

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.django_db
def test_a_wrong_token_is_401_and_a_users_token_that_is_not_staff_is_403() -> None:
    raw, _ = token_issue(user=User.objects.create_user("user@example.org"))

    assert scrape("Bearer " + METRICS_TOKEN[:-1] + "x").status_code == 401
    assert scrape("Bearer chat_not-a-token").status_code == 401
    denied = scrape(f"Bearer {raw}")
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "forbidden"


@pytest.mark.django_db
def test_a_staff_token_and_the_metrics_token_read_prometheus_text() -> None:
    raw, _ = token_issue(user=User.objects.create_user("ops@example.org", is_staff=True))

    for credential in (raw, METRICS_TOKEN):
        response = scrape(f"Bearer {credential}")
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/plain; version=")
        assert "# TYPE chat_time_to_first_token_seconds histogram" in response.content.decode()


@pytest.mark.django_db
def test_no_metrics_token_configured_leaves_staff_only(settings: Settings) -> None:
    settings.METRICS_TOKEN = ""

    assert scrape("Bearer ").status_code == 401
    assert scrape(f"Bearer {METRICS_TOKEN}").status_code == 401


def test_an_ended_generation_counts_its_reason_tokens_and_time_to_first_token() -> None:
    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (
        value("chat_generations_total", model="m-unit", finish_reason="length"),
        value("chat_tokens_total", model="m-unit", direction="in"),
        value("chat_tokens_total", model="m-unit", direction="out"),
        value("chat_time_to_first_token_seconds_count", model="m-unit"),
    )

    metrics.generation_ended(
        model="m-unit",
        finish_reason="length",
        prompt_tokens=12,
        completion_tokens=30,
        time_to_first_token_ms=80,
    )

    after = (
        value("chat_generations_total", model="m-unit", finish_reason="length"),
        value("chat_tokens_total", model="m-unit", direction="in"),
        value("chat_tokens_total", model="m-unit", direction="out"),
        value("chat_time_to_first_token_seconds_count", model="m-unit"),
    )
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 12, 30, 1]
    assert value("chat_time_to_first_token_seconds_bucket", model="m-unit", le="0.1") >= 1


def test_a_metrics_failure_never_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(metrics.RATE_LIMIT_REFUSALS, "labels", broken)

    metrics.rate_limit_refused("minute")  # logged, not raised


RECORD = """
import sys
import django
django.setup()
from config import metrics
metrics.generation_ended(model="m-multi", finish_reason="stop", prompt_tokens=5,
                         completion_tokens=7, time_to_first_token_ms=50)
metrics.websocket_opened()
print("ready", flush=True)
sys.stdin.readline()  # stays alive (its connection open) until told
"""


def test_the_samples_of_several_processes_merge_and_a_dead_ones_connections_do_not_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        **os.environ,
        metrics.MULTIPROCESS_DIR_VARIABLE: str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", RECORD],
            cwd=REPO,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for process in processes:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    dead, alive = processes
    dead.communicate("\n", timeout=30)
    monkeypatch.setenv(metrics.MULTIPROCESS_DIR_VARIABLE, str(tmp_path))
    try:
        merged = samples(metrics.exposition().decode())
    finally:
        alive.communicate("\n", timeout=30)

    generations = ("chat_generations_total", (("finish_reason", "stop"), ("model", "m-multi")))
    assert merged[generations] == 2  # both processes' counts, the dead one's included
    assert merged[("chat_tokens_total", (("direction", "out"), ("model", "m-multi")))] == 14
    assert merged[("chat_websocket_connections", ())] == 1  # only the living process's
