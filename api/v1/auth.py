"""Who calls `/v1/`: an API key (`Authorization: Bearer sk-…`) and nothing else. A session
cookie is never read here (so no CSRF is needed), and an account token is not a key: keys have
scopes, and a user can revoke the key an integration holds without logging out."""

from __future__ import annotations

from channels.db import database_sync_to_async
from django.http import HttpRequest

from accounts.middleware import bearer_token_from_header
from api.models import ApiKey
from api.selectors import api_key_authenticate
from api.v1.errors import OpenAIError

MISSING_KEY = (
    "You didn't provide an API key. Send it as 'Authorization: Bearer sk-…' "
    "(create one with POST /api/keys)."
)
INVALID_KEY = "Incorrect API key provided: the key is unknown, expired or revoked."


async def key_for(request: HttpRequest, *, scope: str) -> ApiKey:
    """The request's live key, which holds `scope`; else an `OpenAIError` (401, 403)."""
    raw = bearer_token_from_header(request.headers.get("Authorization"))
    if raw is None:
        raise OpenAIError(401, MISSING_KEY, code="invalid_api_key")
    key = await database_sync_to_async(api_key_authenticate)(raw_key=raw)
    if key is None:
        raise OpenAIError(401, INVALID_KEY, code="invalid_api_key")
    if scope not in key.scopes:
        raise OpenAIError(
            403,
            f"This API key lacks the scope '{scope}' (it has: {', '.join(key.scopes)}).",
            type="permission_error",
            code="insufficient_permissions",
        )
    return key
