"""A real Prometheus (Debian's `prometheus` package) scrapes the running stack with a staff
bearer token, and a PromQL query returns the time to first token of a chat just made.
Skipped where the binary is not installed (`apt-get install prometheus`)."""

from __future__ import annotations

import asyncio
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
from tests.support.stack import Stack, free_port

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="prometheus is not installed"),
]


@pytest.fixture
def prometheus(live_stack: Stack, tmp_path: Path) -> Iterator[str]:
    """A Prometheus scraping the stack's /metrics every second; its HTTP API's base URL."""
    token_file = tmp_path / "token"
    token_file.write_text(str(staff_client(live_stack).token))
    target = live_stack.base_url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        json.dumps(  # JSON is YAML
            {
                "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "chat",
                        "metrics_path": "/metrics",
                        "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                        "static_configs": [{"targets": [target]}],
                    }
                ],
            }
        )
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
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
