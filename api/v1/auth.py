"""Who calls `/v1/`: an API key (`Authorization: Bearer sk-…`) and nothing else. A session
cookie is never read here (so no CSRF is needed), and an account token is not a key: keys have
scopes, and a user can revoke the key an integration holds without logging out."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.http import HttpRequest

from accounts.middleware import bearer_token_from_header
from accounts.plans import PlanLimits, plan_limits
from api.models import ApiKey
from api.selectors import api_key_authenticate
from api.v1.errors import OpenAIError, from_api_error
from chat import limits
from config.errors import ApiError, json_body

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


def key_plan(key: ApiKey) -> PlanLimits:
    """The limits of the key owner's plan, from the user and plan read with the key
    (`api_key_authenticate`): no query. Admission reads the plan again, so a plan changed
    since is still enforced."""
    return plan_limits(plan=key.user.plan, user_priority=key.user.priority)


async def key_and_body(request: HttpRequest, *, scope: str) -> tuple[ApiKey, Any]:
    """The request's key (with `scope`) and its JSON body, counted against the owner's
    per-user request rate; raises `OpenAIError` for a bad key, body or rate. The prologue of
    the endpoints that admit no generation (moderations, embeddings)."""
    key = await key_for(request, scope=scope)
    try:
        data = json_body(request)
    except ApiError as error:
        raise OpenAIError(413 if error.code == "too_large" else 400, error.message) from None
    wait = await sync_to_async(limits.frame_user_hit, thread_sensitive=False)(owner_id=key.user_id)
    if wait is not None:
        raise from_api_error(ApiError("rate_limited", "Too many requests.", retry_after=wait))
    return key, data
