"""Which `Origin` may use the session cookie on a websocket (cross-site websocket hijacking)."""

from __future__ import annotations

import pytest
from pytest_django import Settings

from accounts.ws_auth import origin_is_allowed


@pytest.mark.parametrize(
    ("origin", "host", "secure", "allowed"),
    [
        ("https://chat.example.com", None, True, True),  # trusted, exact
        ("HTTPS://Chat.Example.com", None, True, True),  # case does not matter
        ("https://app.example.org", None, True, True),  # trusted wildcard
        ("https://example.org.evil.net", None, True, False),
        ("http://app.example.org", None, False, False),  # wildcard keeps its scheme
        ("https://self.example.net", "self.example.net", True, True),  # same origin, wss
        ("http://self.example.net", "self.example.net", True, False),  # scheme downgrade
        ("https://self.example.net:444", "self.example.net", True, False),  # other port
        ("https://other.example.net", "other.example.net", True, False),  # host not allowed
        ("https://chat.example.com/path", None, True, False),
        ("null", None, True, False),
        ("", None, True, False),
        (None, None, True, False),
    ],
)
def test_origin_rule(
    settings: Settings, origin: str | None, host: str | None, secure: bool, allowed: bool
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://chat.example.com", "https://*.example.org"]
    settings.ALLOWED_HOSTS = ["self.example.net"]
    assert origin_is_allowed(origin, host=host, secure=secure) is allowed
