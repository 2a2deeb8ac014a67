"""Security (issue 15, finding 11): deployment defaults. Production settings refuse a
development key and keep Secure cookies, the HTTPS redirect and HSTS on, with preload opt-in;
.env.example is no debug deployment with a public key; compose refuses to start without real
secrets and gives every data service a password."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SECRETS = (
    "DJANGO_SECRET_KEY",
    "POSTGRES_PASSWORD",
    "REDIS_PASSWORD",
    "MONGO_PASSWORD",
    "METRICS_TOKEN",
    "GRAFANA_ADMIN_PASSWORD",
)
RANDOM_KEY = "k7Qw9zXr2LpB4nVt6YhJ8sDf3GmC5aE1uR0oIxKqWbNcZyTe-_vU"
READ_SETTINGS = (
    "import json, django; django.setup(); from django.conf import settings as s; "
    "print(json.dumps({name: getattr(s, name) for name in ("
    "'DEBUG', 'SECRET_KEY', 'SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
    "'SECURE_SSL_REDIRECT', 'SECURE_HSTS_SECONDS', 'SECURE_HSTS_PRELOAD')}))"
)


# Set (blank unless a test gives a value) so that a developer's .env cannot fill them in: the
# settings load .env only for variables the environment lacks.
UNDER_TEST = (
    "DJANGO_SECRET_KEY",
    "DJANGO_SECURE_COOKIES",
    "DJANGO_SECURE_SSL_REDIRECT",
    "DJANGO_HSTS_SECONDS",
    "DJANGO_HSTS_PRELOAD",
)


def _settings(tmp_path: Path, **environment: str) -> subprocess.CompletedProcess[str]:
    """Load the real settings in a fresh process with `environment`."""
    env = {
        "PATH": os.environ["PATH"],
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "config.settings",
        **dict.fromkeys(UNDER_TEST, ""),
        **environment,
    }
    return subprocess.run(
        [sys.executable, "-c", READ_SETTINGS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _loaded(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr[-2000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "key",
    [
        "",
        "django-insecure-local-development-only-key-do-not-use-in-production",
        "django-insecure-" + RANDOM_KEY,
        "short-key",
        "ab" * 40,  # long, but only two distinct characters
    ],
    ids=["missing", "old-public-default", "django-insecure", "short", "repetitive"],
)
def test_production_refuses_a_development_or_weak_key(tmp_path: Path, key: str) -> None:
    result = _settings(tmp_path, DJANGO_DEBUG="false", DJANGO_SECRET_KEY=key)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr
    if key:
        assert key not in result.stderr  # the refusal does not print the secret


def test_production_defaults_keep_cookies_secure_redirect_on_and_preload_off(
    tmp_path: Path,
) -> None:
    loaded = _loaded(_settings(tmp_path, DJANGO_DEBUG="false", DJANGO_SECRET_KEY=RANDOM_KEY))
    assert loaded["SESSION_COOKIE_SECURE"] is True
    assert loaded["CSRF_COOKIE_SECURE"] is True
    assert loaded["SECURE_SSL_REDIRECT"] is True
    assert loaded["SECURE_HSTS_SECONDS"] >= 31536000
    assert loaded["SECURE_HSTS_PRELOAD"] is False


def test_hsts_preload_is_on_only_when_the_operator_asks(tmp_path: Path) -> None:
    loaded = _loaded(
        _settings(
            tmp_path,
            DJANGO_DEBUG="false",
            DJANGO_SECRET_KEY=RANDOM_KEY,
            DJANGO_HSTS_PRELOAD="true",
        )
    )
    assert loaded["SECURE_HSTS_PRELOAD"] is True


def test_debug_without_a_key_uses_no_public_key(tmp_path: Path) -> None:
    first = _loaded(_settings(tmp_path, DJANGO_DEBUG="true"))
    second = _loaded(_settings(tmp_path, DJANGO_DEBUG="true"))
    assert first["SECRET_KEY"] != second["SECRET_KEY"]  # drawn per process, written nowhere
    assert not first["SECRET_KEY"].startswith("django-insecure")
    assert first["SECRET_KEY"] not in (REPO / "config" / "settings.py").read_text()


def _env_example() -> dict[str, str]:
    values = {}
    for line in (REPO / ".env.example").read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            values[match.group(1)] = match.group(2)
    return values


def test_env_example_is_not_a_debug_deployment_with_a_public_key(tmp_path: Path) -> None:
    example = _env_example()
    assert example["DJANGO_DEBUG"] == "false"
    for name in SECRETS:
        assert example[name] == "", name
    # Deployed as it is, the app refuses to start rather than run with a known key.
    result = _settings(tmp_path, **example)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in result.stderr


def _compose_text() -> str:
    return (REPO / "docker-compose.yml").read_text()


def test_compose_requires_every_secret_and_has_no_fallback_for_any() -> None:
    text = _compose_text()
    for name in SECRETS:
        assert re.search(r"\$\{" + name + r":\?", text), name
        assert not re.search(r"\$\{" + name + r":?-", text), name


def test_compose_never_turns_secure_cookies_or_the_https_redirect_off() -> None:
    environment = yaml.safe_load(_compose_text())["x-app-env"]
    for name in ("DJANGO_SECURE_SSL_REDIRECT", "DJANGO_SECURE_COOKIES", "DJANGO_DEBUG"):
        value = str(environment.get(name, ""))
        assert "false" not in value.lower() or name == "DJANGO_DEBUG", name
    assert environment["DJANGO_DEBUG"] == "false"
    assert environment["DJANGO_HSTS_PRELOAD"] == "${DJANGO_HSTS_PRELOAD:-false}"


def _compose_config(environment: dict[str, str], workdir: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config`: compose's own interpolation, no Docker engine needed."""
    shutil.copy(REPO / "docker-compose.yml", workdir / "docker-compose.yml")
    return subprocess.run(
        ["docker-compose", "config"],
        cwd=workdir,
        env={"PATH": os.environ["PATH"], **environment},
        capture_output=True,
        text=True,
        timeout=60,
    )


needs_compose = pytest.mark.skipif(
    shutil.which("docker-compose") is None,
    reason="docker-compose is not installed (scripts/setup.sh --with-test-tools installs it)",
)


@needs_compose
@pytest.mark.parametrize("missing", SECRETS)
def test_compose_refuses_to_start_without_each_secret(tmp_path: Path, missing: str) -> None:
    environment = {name: f"{name.lower()}-value" for name in SECRETS if name != missing}
    result = _compose_config(environment, tmp_path)
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr


@needs_compose
def test_compose_gives_every_data_service_a_password_and_the_app_uses_them(
    tmp_path: Path,
) -> None:
    environment = {name: f"{name.lower()}-value" for name in SECRETS}
    result = _compose_config(environment, tmp_path)
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]

    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"] == "postgres_password-value"
    redis_command = services["redis"]["command"]
    assert redis_command[redis_command.index("--requirepass") + 1] == "redis_password-value"
    assert services["redis"]["environment"]["REDISCLI_AUTH"] == "redis_password-value"
    mongo = services["mongo"]["environment"]
    assert mongo["MONGO_INITDB_ROOT_PASSWORD"] == "mongo_password-value"
    for name in ("web", "migrate", "beat", "worker", "worker-cpu"):
        app = services[name]["environment"]
        assert ":postgres_password-value@postgres" in app["DATABASE_URL"], name
        assert app["REDIS_URL"].startswith("redis://:redis_password-value@redis"), name
        assert "chat:mongo_password-value@mongo" in app["MONGODB_URL"], name
        assert app["DJANGO_SECRET_KEY"] == "django_secret_key-value", name
        assert app["DJANGO_SECURE_SSL_REDIRECT"] in ("", None), name
        assert app["DJANGO_SECURE_COOKIES"] in ("", None), name
        assert app["METRICS_TOKEN"] == "metrics_token-value", name
    assert services["prometheus"]["environment"]["METRICS_TOKEN"] == "metrics_token-value"
    grafana = services["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"] == "grafana_admin_password-value"
