"""`POST /v1/moderations`: the platform's input moderation (`moderation.pipeline`, with the
operator's rules, allowlist and category actions) in OpenAI's response shape. A lookup, not a
message: nothing is stored and no moderation event is recorded."""

from __future__ import annotations

import uuid
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from api.models import SCOPE_MODERATIONS
from api.v1.auth import key_and_body
from api.v1.errors import OpenAIError, error_response, invalid
from moderation import pipeline
from moderation.types import Action, Direction, Outcome

MODEL_NAME = "platform-moderation"
MAX_INPUTS = 32
# OpenAI's categories, always present in a result; the platform's own (pii, profanity, ...)
# are added when a check reports them.
OPENAI_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)


def _inputs(data: dict[str, Any]) -> list[str]:
    value = data.get("input")
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not 0 < len(texts) <= MAX_INPUTS:
        raise invalid(f"input: a string or a list of 1 to {MAX_INPUTS} strings", param="input")
    if not all(isinstance(text, str) for text in texts):
        raise invalid("input: only text is supported", param="input")
    if any(len(text) > settings.CHAT_MAX_CONTENT_CHARS for text in texts) or (
        sum(map(len, texts)) > settings.API_MAX_INPUT_CHARS
    ):
        raise invalid(
            f"input: at most {settings.CHAT_MAX_CONTENT_CHARS} characters each and "
            f"{settings.API_MAX_INPUT_CHARS} in all",
            param="input",
            code="string_above_max_length",
        )
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid("model: a string", param="model")
    for name in data:
        if name not in ("input", "model"):
            raise invalid(f"Unrecognized request argument supplied: {name}", param=name)
    return texts


def result_json(outcome: Outcome) -> dict[str, Any]:
    """One text's outcome as OpenAI's result: flagged when any check did more than allow."""
    categories = {name: False for name in OPENAI_CATEGORIES}
    scores = {name: 0.0 for name in OPENAI_CATEGORIES}
    for verdict in outcome.verdicts:
        if verdict.action is Action.ALLOW:
            continue
        for category in verdict.categories:
            categories[category] = True
            scores[category] = max(scores.get(category, 0.0), float(verdict.score or 1.0))
    return {
        "flagged": outcome.action is not Action.ALLOW,
        "categories": categories,
        "category_scores": scores,
        "category_applied_input_types": {name: ["text"] for name in categories},
    }


def _moderate(texts: list[str]) -> list[Outcome]:
    budget = settings.MODERATION_INPUT_BUDGET_MS
    return [pipeline.run(text, direction=Direction.INPUT, budget_ms=budget) for text in texts]


@csrf_exempt  # an API key in a header, never a cookie
async def moderations(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        response = error_response(OpenAIError(405, "Use POST.", code="method_not_allowed"))
        response["Allow"] = "POST"
        return response
    try:
        _, data = await key_and_body(request, scope=SCOPE_MODERATIONS)
        texts = _inputs(data)
    except OpenAIError as error:
        return error_response(error)
    outcomes = await database_sync_to_async(_moderate)(texts)
    return JsonResponse(
        {
            "id": f"modr-{uuid.uuid4().hex}",
            "model": MODEL_NAME,
            "results": [result_json(outcome) for outcome in outcomes],
        }
    )
