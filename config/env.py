"""Typed readers for environment variables.

Every setting of the project comes from the environment through these helpers. A value that
cannot be parsed stops the process at start with a message naming the variable, instead of
surfacing later as a confusing failure deep inside a request.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

# Set by the web server (config/server.py) in its own environment before the settings load:
# they then give it the web server's database pool (WEB_DATABASE_POOL_MAX_SIZE).
WEB_SERVER_MARK = "CHAT_IS_WEB_SERVER"


class ImproperlyConfiguredEnv(Exception):
    """An environment variable holds a value the project cannot use."""

    def __init__(self, name: str, value: str, expected: str) -> None:
        super().__init__(f"environment variable {name}={value!r} is invalid: expected {expected}")
        self.name = name


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str) -> str:
    return _raw(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfiguredEnv(name, value, "a boolean (true/false, 1/0, yes/no, on/off)")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfiguredEnv(name, value, "an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfiguredEnv(name, value, f"an integer >= {minimum}")
    if maximum is not None and number > maximum:
        raise ImproperlyConfiguredEnv(name, value, f"an integer <= {maximum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfiguredEnv(name, value, "a number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfiguredEnv(name, value, f"a number >= {minimum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_url(name: str, default: str, *, schemes: set[str]) -> str:
    value = _raw(name) or default
    scheme = urlsplit(value).scheme
    if scheme not in schemes:
        raise ImproperlyConfiguredEnv(
            name, value, "a URL with scheme " + " or ".join(sorted(schemes))
        )
    return value


def env_choice(name: str, default: str, *, choices: set[str]) -> str:
    value = _raw(name) or default
    if value not in choices:
        raise ImproperlyConfiguredEnv(name, value, "one of " + ", ".join(sorted(choices)))
    return value


SECRET_MIN_CHARS = 50
# Distinct characters a secret needs (Django's deployment check asks the same): "x" * 50 is
# long but not secret.
SECRET_MIN_UNIQUE_CHARS = 5
# Development keys published with Django or with earlier versions of this project.
_PUBLIC_SECRET_PREFIXES = ("django-insecure",)


def env_secret(name: str, *, development_default: str, required: bool) -> str:
    """A secret that must be set explicitly where `required` (production) is true, and must
    then look random: a development or example key stops the process."""
    value = _raw(name)
    if value is None:
        if required:
            raise ImproperlyConfiguredEnv(
                name, "", "a secret value (it must be set when DEBUG is off)"
            )
        return development_default
    if required and (
        len(value) < SECRET_MIN_CHARS
        or len(set(value)) < SECRET_MIN_UNIQUE_CHARS
        or value.startswith(_PUBLIC_SECRET_PREFIXES)
    ):
        raise ImproperlyConfiguredEnv(
            name,
            "<hidden>",
            f"a random secret of at least {SECRET_MIN_CHARS} characters, not a development key",
        )
    return value
