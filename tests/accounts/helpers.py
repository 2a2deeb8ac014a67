from __future__ import annotations

import json
from typing import Any

from django.test import Client


def post_json(client: Client, url: str, body: Any, **extra: Any) -> Any:
    return client.post(url, json.dumps(body), content_type="application/json", **extra)


def csrf_token(client: Client) -> str:
    """What a SPA does first: GET /api/auth/csrf, which also sets the CSRF cookie."""
    return str(client.get("/api/auth/csrf").json()["csrf_token"])
