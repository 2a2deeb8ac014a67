"""Issue 15, finding 2: a forged X-Forwarded-For changes nothing unless a trusted proxy sent it.

The address rule itself (config/proxy.py), the middleware on an ASGI scope, and Daphne started
exactly as the Dockerfile and `make run` start it, with failed logins counted in real Redis.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from pytest_django import Settings

from config.proxy import ClientAddressMiddleware, client_address, parse_networks
from tests.support.daphne import daphne_running, free_port

REPO = Path(__file__).resolve().parents[2]
PROXIES = parse_networks(["10.0.0.0/8", "2001:db8:1::/48"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # A direct client: its header is ignored, whatever it says.
        ("203.0.113.7", ["198.51.100.1"], "203.0.113.7"),
        ("203.0.113.7", [], "203.0.113.7"),
        # Through one trusted proxy: the hop it appended.
        ("10.0.0.2", ["198.51.100.1"], "198.51.100.1"),
        # What the client put in front of it is not believed.
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("10.0.0.2", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),
        # Two trusted proxies in a row are both skipped.
        ("10.0.0.2", ["6.6.6.6, 198.51.100.1, 10.0.0.9"], "198.51.100.1"),
        ("2001:db8:1::5", ["[2001:db8:2::7]:4431"], "2001:db8:2::7"),
        ("10.0.0.2", ["198.51.100.1:5123"], "198.51.100.1"),
        # A trusted proxy with no header, or only trusted hops: the left-most trusted one.
        ("10.0.0.2", [], "10.0.0.2"),
        ("10.0.0.2", ["10.0.0.3"], "10.0.0.3"),
        # Garbage where an address should be stops the walk at the last good hop.
        ("10.0.0.2", ["198.51.100.1, nonsense"], "10.0.0.2"),
    ],
)
def test_the_client_is_the_right_most_hop_that_is_not_a_trusted_proxy(
    peer: str, forwarded_for: list[str], expected: str
) -> None:
    assert client_address(peer, forwarded_for, PROXIES) == expected


async def scope_seen(scope: dict[str, Any]) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def app(inner: dict[str, Any], receive: Any, send: Any) -> None:
        seen.update(inner)

    await ClientAddressMiddleware(app)(scope, None, None)
    return seen


FORGED = [
    (b"x-forwarded-for", b"6.6.6.6"),
    (b"x-forwarded-proto", b"https"),
    (b"x-real-ip", b"6.6.6.6"),
    (b"host", b"example.org"),
]


@pytest.mark.parametrize("kind", ["http", "websocket"])
async def test_a_direct_clients_forwarding_headers_are_dropped(
    settings: Settings, kind: str
) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]

    seen = await scope_seen({"type": kind, "client": ["203.0.113.7", 5555], "headers": FORGED})

    assert seen["client"] == ["203.0.113.7", 5555]
    assert seen["headers"] == [(b"host", b"example.org")]


async def test_a_trusted_proxys_client_address_is_used(settings: Settings) -> None:
    settings.TRUSTED_PROXIES = ["10.0.0.0/8"]
    headers = [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.1"), (b"x-forwarded-proto", b"https")]

    seen = await scope_seen({"type": "http", "client": ["10.0.0.2", 5555], "headers": headers})

    assert seen["client"][0] == "198.51.100.1"
    assert (b"x-forwarded-proto", b"https") in seen["headers"]


def test_a_bad_trusted_proxies_entry_fails_at_start() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "TRUSTED_PROXIES": "10.0.0"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode != 0
    assert "TRUSTED_PROXIES" in result.stderr


def dockerfile_daphne_arguments() -> list[str]:
    line = next(
        line for line in (REPO / "Dockerfile").read_text().splitlines() if "config.server" in line
    )
    command = json.loads(line.removeprefix("CMD").strip())
    return list(command[command.index("config.server") + 1 :])


def run_sh_daphne_arguments() -> list[str]:
    text = (REPO / "scripts" / "run.sh").read_text()
    match = re.search(r"python -m config\.server (.+?) >", text)
    assert match, "scripts/run.sh no longer starts config.server"
    return shlex.split(match.group(1).replace('"$HOST"', "127.0.0.1").replace('"$PORT"', "8000"))


@pytest.fixture(params=["Dockerfile", "scripts/run.sh"])
def launched_daphne(
    request: pytest.FixtureRequest,
    django_db_setup: None,
    tmp_path: Path,
) -> Iterator[str]:
    """Daphne with the launch arguments of the Dockerfile or of `make run` (config.server adds
    only transport limits to them), on a free port, serving the real application."""
    from_dockerfile = request.param == "Dockerfile"
    arguments = dockerfile_daphne_arguments() if from_dockerfile else run_sh_daphne_arguments()
    port = free_port()
    arguments[arguments.index("-b") + 1] = "127.0.0.1"
    arguments[arguments.index("-p") + 1] = str(port)
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
        f"{database['NAME']}",
        "CACHE_KEY_PREFIX": f"chat-test-proxy-{uuid.uuid4().hex}",
        "LOGIN_FAILURE_LIMIT": "3",
        "TRUSTED_PROXIES": "",
    }
    with daphne_running(arguments, port=port, env=env, log=tmp_path / "daphne.log"):
        yield f"http://127.0.0.1:{port}"


@pytest.mark.django_db(transaction=True)
def test_forged_forwarded_for_headers_do_not_escape_the_login_throttle(
    launched_daphne: str,
) -> None:
    body = {"email": "victim@example.org", "password": "guess"}
    statuses = []
    with httpx.Client(base_url=launched_daphne, timeout=30) as client:
        for n in range(4):
            forged = {"X-Forwarded-For": f"198.51.100.{n}", "X-Real-IP": f"198.51.100.{n}"}
            statuses.append(client.post("/api/auth/token", json=body, headers=forged).status_code)

    # Three failures from this one address, whatever it claimed to be, and the fourth waits.
    assert statuses == [401, 401, 401, 429]
