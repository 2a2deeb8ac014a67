"""A real Prometheus (Debian's `prometheus` package) scrapes the running stack with a staff
bearer token, and a PromQL query returns the time to first token of a chat just made; with the
repository's own scrape config, every query of the Grafana dashboard finds its metrics.
Skipped where the binary is not installed (`apt-get install prometheus`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.metrics_support import staff_client, user_client
from tests.support.dashboard import (
    dashboard_queries,
    grouped_labels,
    metric_names,
    runnable,
    scrape_config,
)
from tests.support.stack import Stack, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed"),
]


@contextlib.contextmanager
def running_prometheus(config: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """A Prometheus with `config` (a scrape config, as prometheus.yml holds it) on a free
    port, stopped afterwards; its HTTP API's base URL."""
    path = tmp_path / "prometheus.yml"
    path.write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={path}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def staff_token_file(stack: Stack, tmp_path: Path) -> Path:
    token_file = tmp_path / "token"
    token_file.write_text(str(staff_client(stack).token))
    return token_file


@pytest.fixture
def prometheus(live_stack: Stack, tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping the stack's /metrics every second; its HTTP API's base URL."""
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "chat",
                "metrics_path": "/metrics",
                "authorization": {
                    "type": "Bearer",
                    "credentials_file": str(staff_token_file(live_stack, tmp_path)),
                },
                "static_configs": [{"targets": [live_stack.base_url.removeprefix("http://")]}],
            }
        ],
    }
    with running_prometheus(config, tmp_path) as base_url:
        yield base_url


def query(base_url: str, promql: str) -> list[dict[str, Any]]:
    url = f"{base_url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return list(answer["data"]["result"])


def eventually(base_url: str, promql: str, *, timeout: float = 60) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = query(base_url, promql)
        except OSError:  # Prometheus still starting
            result = []
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def test_prometheus_scrapes_the_app_and_promql_returns_the_time_to_first_token(
    live_stack: Stack, prometheus: str
) -> None:
    up = eventually(prometheus, 'up{job="chat"} == 1')
    assert up, "Prometheus never scraped /metrics successfully"
    user = user_client(live_stack)

    async def chat() -> None:
        async with user.connect() as session:
            accepted = await session.send("Say hello.", options={"max_tokens": 16})
            await session.collect(accepted["generation_id"])

    asyncio.run(chat())
    ttft = eventually(
        prometheus,
        "sum by (model) (chat_time_to_first_token_seconds_sum)"
        " / sum by (model) (chat_time_to_first_token_seconds_count)",
    )
    p95 = eventually(
        prometheus,
        "histogram_quantile(0.95, sum by (le, model) (chat_time_to_first_token_seconds_bucket))",
    )

    assert ttft and all(float(row["value"][1]) > 0 for row in ttft)
    assert p95 and {row["metric"]["model"] for row in p95} == {
        row["metric"]["model"] for row in ttft
    }
    print(f"mean time to first token per model: {[(r['metric'], r['value'][1]) for r in ttft]}")


def test_the_repositorys_scrape_config_reads_the_stack_and_feeds_every_dashboard_query(
    live_stack: Stack, tmp_path: Path
) -> None:
    """`deploy/prometheus/prometheus.yml` as compose runs it, its web job pointed at this
    stack (compose's name `web:8000` does not resolve here, and the workers' job finds its
    targets through compose's DNS: the web tier's /metrics merges every process of the stack,
    workers included). After a chat and a refused frame, every metric the Grafana dashboard
    reads was scraped, with every label the dashboard groups it by, and every panel's query
    returns series."""
    config = scrape_config()
    (web,) = [job for job in config["scrape_configs"] if job["job_name"] == "chat-web"]
    web["static_configs"] = [{"targets": [live_stack.base_url.removeprefix("http://")]}]
    web["authorization"]["credentials_file"] = str(staff_token_file(live_stack, tmp_path))
    config["global"] = {"scrape_interval": "1s", "scrape_timeout": "1s"}
    config["scrape_configs"] = [web]
    user = user_client(live_stack)

    async def chat_and_flood() -> None:
        async with user.connect() as session:
            accepted = await session.send("Name three colours.", options={"max_tokens": 16})
            await session.collect(accepted["generation_id"])
            for _ in range(30):  # past CHAT_FRAMES_PER_SECOND_PER_CONNECTION (10): refusals
                await session.send_frame({"type": "ping"})
            for _ in range(30):
                await session.receive()

    with running_prometheus(config, tmp_path) as base_url:
        assert eventually(base_url, 'up{job="chat-web"} == 1'), "the web job never scraped"
        asyncio.run(chat_and_flood())
        wanted = set().union(*(metric_names(q) for q in dashboard_queries()))
        assert wanted, "no metric name read from the dashboard"
        scraped: set[str] = set()
        deadline = time.monotonic() + 60
        while not wanted <= scraped and time.monotonic() < deadline:
            time.sleep(1)
            scraped = set(api(base_url, "/api/v1/label/__name__/values"))
        assert wanted <= scraped, (
            f"the dashboard reads metrics the app does not export: {wanted - scraped}"
        )

        for query in dashboard_queries():
            for metric, labels in grouped_labels(query).items():
                series = api(base_url, "/api/v1/series", {"match[]": metric})
                have = set().union(*(set(row) for row in series))
                assert labels <= have, f"{metric} has no label {labels - have} ({query})"
            assert eventually(base_url, runnable(query), timeout=30), f"no series for {query}"
    print(f"dashboard metrics scraped: {sorted(wanted)}")


def api(base_url: str, path: str, parameters: dict[str, str] | None = None) -> Any:
    url = f"{base_url}{path}?{urllib.parse.urlencode(parameters or {})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]
