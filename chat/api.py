"""The conversation REST API (PROTOCOL.md, "REST"): list, read, rename, archive, delete,
export, and feedback on answers. Thin views: check the request, call a selector or service,
shape the JSON. Another user's ids get the same 404 as ids that never existed.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import islice
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.utils import timezone

from accounts.decorators import login_required_api
from chat import events, selectors, services
from chat.errors import ChatError
from chat.generation.admission import conversation_model_choice, system_prompt_checked
from config.errors import NotFound, api_view, json_body

PATCH_FIELDS = frozenset({"title", "archived", "system_prompt"})
FEEDBACK_FIELDS = frozenset({"rating", "comment"})
ARCHIVED_FILTERS: dict[str, bool | None] = {
    "false": False,
    "0": False,
    "true": True,
    "1": True,
    "all": None,
}
EXPORT_FORMATS = ("json", "markdown")


def _owner(request: HttpRequest) -> int:
    owner_id = request.user.pk  # login_required_api already refused anonymous requests
    if not isinstance(owner_id, int):
        raise ChatError("unauthorized", "Authentication required.")
    return owner_id


def _unknown_fields(data: dict[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ChatError(
            "bad_request",
            f"Unknown fields: {', '.join(unknown)}.",
            fields={name: ["unknown field"] for name in unknown},
        )


def message_json(message: dict[str, Any]) -> dict[str, Any]:
    """A message as PROTOCOL.md defines it; answers add `usage`, and `generation_id` and `seq`
    so a reloaded page can resume one that is still streaming."""
    out = {
        "id": message["id"],
        "conversation_id": message["conversation_id"],
        "parent_id": message.get("parent_id"),
        "role": message["role"],
        "content": message.get("content") or "",
        "state": message["state"],
        "model": message.get("model"),
        "created_at": message["created_at"],
    }
    if message["role"] == "assistant":
        out["usage"] = message.get("usage")
        out["generation_id"] = message.get("generation_id")
        out["seq"] = message.get("seq") or 0
        out["model_version"] = message.get("model_version")  # None: a model without versions
    out["feedback"] = message.get("feedback")
    return out


def conversation_summary_json(conversation: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": conversation["id"],
        "title": conversation["title"],
        "model": conversation.get("model"),
        "updated_at": conversation["updated_at"],
        "archived": bool(conversation.get("archived")),
    }


def conversation_json(conversation: dict[str, Any]) -> dict[str, Any]:
    return conversation_summary_json(conversation) | {
        "created_at": conversation["created_at"],
        "system_prompt": conversation.get("system_prompt"),
        "current_leaf_id": conversation.get("current_leaf_id"),
        # What the next turn asks for when it names no model: "auto" for a conversation
        # started with the router, else its model.
        "model_choice": conversation_model_choice(conversation),
    }


def _conversation_or_404(request: HttpRequest, conversation_id: str) -> dict[str, Any]:
    conversation = selectors.conversation_get(
        conversation_id=conversation_id, owner_id=_owner(request)
    )
    if conversation is None:
        raise NotFound("conversation")
    return conversation


def _limit(request: HttpRequest, *, default: int, most: int) -> int:
    raw = request.GET.get("limit")
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"[0-9]{1,6}", raw) or not 0 < int(raw) <= most:
        raise ChatError(
            "bad_request",
            f"limit: between 1 and {most}",
            fields={"limit": [f"between 1 and {most}"]},
        )
    return int(raw)


@api_view("GET")
@login_required_api
def conversations(request: HttpRequest) -> JsonResponse:
    """`GET /api/conversations?q=&cursor=&archived=true|false|all&limit=`.
    Without `archived`, archived conversations are left out (the sidebar's list)."""
    archived_raw = request.GET.get("archived", "false").lower()
    if archived_raw not in ARCHIVED_FILTERS:
        raise ChatError(
            "bad_request",
            "archived: must be true, false or all",
            fields={"archived": ["must be true, false or all"]},
        )
    results, next_cursor = selectors.conversation_list(
        owner_id=_owner(request),
        cursor=request.GET.get("cursor") or None,
        limit=_limit(request, default=20, most=selectors.LIST_MAX_LIMIT),
        q=request.GET.get("q"),
        archived=ARCHIVED_FILTERS[archived_raw],
    )
    return JsonResponse(
        {
            "results": [conversation_summary_json(item) for item in results],
            "next_cursor": next_cursor,
        }
    )


@api_view("GET", "PATCH", "DELETE")
@login_required_api
def conversation_detail(request: HttpRequest, conversation_id: str) -> HttpResponse:
    owner_id = _owner(request)
    if request.method == "DELETE":
        conversation = _conversation_or_404(request, conversation_id)
        if not services.conversation_delete(conversation_id=conversation_id, owner_id=owner_id):
            raise NotFound("conversation")
        # The user's other tabs and devices drop it from their lists.
        events.to_user_sync(owner_id, events.conversation_updated(conversation | {"deleted": True}))
        return HttpResponse(status=204)
    if request.method == "PATCH":
        data = json_body(request)
        _unknown_fields(data, PATCH_FIELDS)
        if not data:
            raise ChatError("bad_request", "Send at least one of: archived, system_prompt, title.")
        if "title" in data and data["title"] is None:
            raise ChatError("bad_request", "title: must be a string", fields={"title": ["null"]})
        if "archived" in data and not isinstance(data["archived"], bool):
            raise ChatError(
                "bad_request",
                "archived: must be true or false",
                fields={"archived": ["must be true or false"]},
            )
        system_prompt = data.get("system_prompt")
        if system_prompt:
            _conversation_or_404(request, conversation_id)  # moderate only what the user owns
            system_prompt = system_prompt_checked(
                system_prompt, owner_id=owner_id, conversation_id=conversation_id
            )
        updated = services.conversation_update(
            conversation_id=conversation_id,
            owner_id=owner_id,
            title=data.get("title"),
            archived=data.get("archived"),
            # null clears the prompt, like "".
            system_prompt=""
            if "system_prompt" in data and system_prompt is None
            else system_prompt,
        )
        if updated is None:
            raise NotFound("conversation")
        # The user's other tabs and devices show the new title or archive state.
        events.to_user_sync(owner_id, events.conversation_updated(updated))
        return JsonResponse(conversation_json(updated))
    conversation = _conversation_or_404(request, conversation_id)
    # At most CHAT_MESSAGES_PAGE_MAX messages per response: a client that sends no `limit`
    # gets that many, oldest first, and `messages_next_cursor` continues when there are more.
    most = settings.CHAT_MESSAGES_PAGE_MAX
    messages, next_cursor = selectors.message_page(
        conversation_id=conversation_id,
        owner_id=owner_id,
        cursor=request.GET.get("cursor") or None,
        limit=_limit(request, default=most, most=most),
    )
    return JsonResponse(
        conversation_json(conversation)
        | {
            "messages": [message_json(message) for message in messages],
            "messages_next_cursor": next_cursor,
        }
    )


def _markdown_head(conversation: dict[str, Any]) -> str:
    lines = [
        f"# {conversation['title']}",
        "",
        f"- Model: {conversation.get('model') or ''}",
        f"- Created: {conversation['created_at'].isoformat()}",
        f"- Exported: {timezone.now().isoformat()}",
    ]
    if conversation.get("system_prompt"):
        lines += ["", "## System", "", conversation["system_prompt"]]
    return "\n".join(lines) + "\n"


def _markdown_message(message: dict[str, Any]) -> str:
    heading = message["role"].capitalize()
    if message["role"] == "assistant" and message.get("model"):
        heading += f" ({message['model']})"
    if message["state"] not in ("complete", "queued", "streaming"):
        heading += f" [{message['state']}]"
    return f"\n## {heading}\n\n{message.get('content') or ''}\n"


def _json_text(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)


async def _chunks(read: Callable[[], list[str]]) -> AsyncIterator[bytes]:
    """The text that `read` returns, call after call until it returns nothing. `read` runs in
    the sync thread (the store is synchronous); the event loop only sends what it wrote."""
    while True:
        texts = await sync_to_async(read)()
        if not texts:
            return
        for text in texts:
            yield text.encode()


def _export_json(conversation: dict[str, Any], owner_id: int) -> AsyncIterator[bytes]:
    """The whole conversation as one JSON document, written a batch of messages at a time."""
    messages = selectors.message_stream(conversation_id=conversation["id"], owner_id=owner_id)
    head = {"conversation": conversation_json(conversation), "exported_at": timezone.now()}
    parts: Iterator[str] = iter([_json_text(head)[:-2] + ',\n  "messages": ['])
    separator = "\n    "

    def read() -> list[str]:
        nonlocal separator
        texts = list(islice(parts, 1))
        for message in islice(messages, selectors.MESSAGE_BATCH):
            texts.append(separator + _json_text(message_json(message)).replace("\n", "\n    "))
            separator = ",\n    "
        if not texts and separator:
            separator = ""
            texts = ["\n  ]\n}\n"]
        return texts

    return _chunks(read)


def _export_markdown(conversation: dict[str, Any], owner_id: int) -> AsyncIterator[bytes]:
    """The current branch as a document, written a batch of messages at a time."""
    leaf = conversation.get("current_leaf_id")
    head: list[str] = [_markdown_head(conversation)]
    branch: list[str] | None = None

    def read() -> list[str]:
        nonlocal head, branch
        if head:
            texts, head = head, []
            return texts
        if branch is None:
            branch = selectors.message_path_ids(message_id=leaf, owner_id=owner_id) if leaf else []
        batch, branch = branch[: selectors.MESSAGE_BATCH], branch[selectors.MESSAGE_BATCH :]
        messages = selectors.message_list_by_ids(ids=batch, owner_id=owner_id)
        return [_markdown_message(message) for message in messages]

    return _chunks(read)


@api_view("GET")
@login_required_api
def conversation_export(request: HttpRequest, conversation_id: str) -> HttpResponseBase:
    """`?format=json` (default): the conversation with every branch. `?format=markdown`: the
    current branch, as a document to read."""
    export_format = request.GET.get("format", "json")
    if export_format not in EXPORT_FORMATS:
        raise ChatError(
            "bad_request",
            "format: must be json or markdown",
            fields={"format": ["must be json or markdown"]},
        )
    conversation = _conversation_or_404(request, conversation_id)
    # Streamed: the response holds a batch of messages at a time, never the conversation.
    if export_format == "markdown":
        response = StreamingHttpResponse(
            _export_markdown(conversation, _owner(request)),
            content_type="text/markdown; charset=utf-8",
        )
        extension = "md"
    else:
        response = StreamingHttpResponse(
            _export_json(conversation, _owner(request)), content_type="application/json"
        )
        extension = "json"
    # The id is hex we generated, so it is safe inside the header.
    response["Content-Disposition"] = (
        f'attachment; filename="conversation-{conversation["id"]}.{extension}"'
    )
    return response


@api_view("POST")
@login_required_api
def message_feedback(request: HttpRequest, message_id: str) -> JsonResponse:
    """`{"rating": 1 | -1, "comment": "..."}` on an assistant message; replaces earlier feedback."""
    data = json_body(request)
    _unknown_fields(data, FEEDBACK_FIELDS)
    if "rating" not in data:
        raise ChatError("bad_request", "rating: required", fields={"rating": ["required"]})
    comment = data.get("comment")
    message = services.message_feedback_set(
        message_id=message_id,
        owner_id=_owner(request),
        rating=data["rating"],
        comment="" if comment is None else comment,
    )
    if message is None:
        raise NotFound("message")
    return JsonResponse(message_json(message))
