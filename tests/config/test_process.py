"""The long-running processes tune the interpreter from settings when they start."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from pytest_django import Settings

from config import process, server


@pytest.fixture
def restored_switch_interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    yield
    sys.setswitchinterval(before)


@pytest.mark.usefixtures("restored_switch_interval")
def test_the_gil_switch_interval_comes_from_settings(settings: Settings) -> None:
    settings.PYTHON_SWITCH_INTERVAL_MS = 0.25

    process.tune()

    assert sys.getswitchinterval() == pytest.approx(0.00025)


@pytest.mark.usefixtures("restored_switch_interval")
def test_the_web_server_tunes_the_interpreter_before_daphne_starts(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.PYTHON_SWITCH_INTERVAL_MS = 2.0
    seen: list[float] = []
    monkeypatch.setattr(
        server.CommandLineInterface, "run", lambda cli, args: seen.append(sys.getswitchinterval())
    )

    server.main(["config.asgi:application"])

    assert seen == [pytest.approx(0.002)]
