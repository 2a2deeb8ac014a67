"""Settings come from the environment, and a bad value stops the process naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from config.env import (
    ImproperlyConfiguredEnv,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_secret,
    env_url,
)

REPO = Path(__file__).resolve().parents[2]


def test_unset_and_blank_variables_take_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOME_INT", raising=False)
    monkeypatch.setenv("SOME_BLANK", "  ")
    assert env_int("SOME_INT", 7) == 7
    assert env_int("SOME_BLANK", 3) == 3


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("0", False), ("YES", True), ("off", False)]
)
def test_booleans_accept_the_usual_spellings(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: bool
) -> None:
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG", not expected) is expected


@pytest.mark.parametrize(
    ("reader", "raw"),
    [
        (lambda: env_bool("BAD", False), "maybe"),
        (lambda: env_int("BAD", 1), "ten"),
        (lambda: env_int("BAD", 1, minimum=1), "0"),
        (lambda: env_float("BAD", 1.0), "fast"),
        (lambda: env_url("BAD", "redis://x", schemes={"redis"}), "http://x"),
    ],
)
def test_a_bad_value_raises_an_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, reader: object, raw: str
) -> None:
    monkeypatch.setenv("BAD", raw)
    with pytest.raises(ImproperlyConfiguredEnv, match="BAD"):
        reader()  # type: ignore[operator]


def test_lists_are_comma_separated_and_trimmed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTS", " a.example, b.example ,,")
    assert env_list("HOSTS", []) == ["a.example", "b.example"]


def test_production_requires_a_real_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SECRET", raising=False)
    with pytest.raises(ImproperlyConfiguredEnv, match="SECRET"):
        env_secret("SECRET", development_default="dev", required=True)
    monkeypatch.setenv("SECRET", "short")
    with pytest.raises(ImproperlyConfiguredEnv, match="SECRET"):
        env_secret("SECRET", development_default="dev", required=True)
    assert env_secret("UNSET_SECRET", development_default="dev", required=False) == "dev"


def _start_django(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_DEBUG": "true",
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_app_refuses_to_start_with_a_bad_variable_and_names_it() -> None:
    result = _start_django(CHAT_MAX_FRAME_BYTES="huge")
    assert result.returncode != 0
    assert "CHAT_MAX_FRAME_BYTES" in result.stderr


def test_the_app_refuses_to_start_in_production_without_a_secret() -> None:
    result = _start_django(DJANGO_DEBUG="false", DJANGO_SECRET_KEY="")
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def test_every_setting_read_from_the_environment_is_documented_in_env_example() -> None:
    import re

    documented = {
        line.split("=", 1)[0]
        for line in (REPO / ".env.example").read_text().splitlines()
        if re.match(r"^[A-Z][A-Z0-9_]*=", line)
    }
    read = set()
    for path in [*REPO.glob("config/*.py"), *REPO.glob("*/conf.py"), *REPO.glob("*/settings.py")]:
        read |= set(re.findall(r'env_\w+\(\s*"([A-Z][A-Z0-9_]*)"', path.read_text()))
    assert read, "no settings found: the scan is broken"
    assert read - documented == set()
