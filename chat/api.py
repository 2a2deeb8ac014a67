"""The conversation REST API (PROTOCOL.md, "REST"): list, read, rename, archive, delete,
export, and feedback on answers. Thin views: check the request, call a selector or service,
shape the JSON. Another user's ids get the same 404 as ids that never existed.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone

from accounts.decorators import login_required_api
from chat import events, selectors, services
from chat.errors import ChatError
from chat.generation.admission import system_prompt_checked
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
    }


def _conversation_or_404(request: HttpRequest, conversation_id: str) -> dict[str, Any]:
    conversation = selectors.conversation_get(
        conversation_id=conversation_id, owner_id=_owner(request)
    )
    if conversation is None:
        raise NotFound("conversation")
    return conversation


def _messages(request: HttpRequest, conversation_id: str) -> list[dict[str, Any]]:
    return [
        message_json(message)
        for message in selectors.message_list(
            conversation_id=conversation_id, owner_id=_owner(request)
        )
    ]


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
    limit_raw = request.GET.get("limit", "20")
    if not re.fullmatch(r"[0-9]{1,3}", limit_raw):
        raise ChatError(
            "bad_request",
            f"limit: between 1 and {selectors.LIST_MAX_LIMIT}",
            fields={"limit": [f"between 1 and {selectors.LIST_MAX_LIMIT}"]},
        )
    results, next_cursor = selectors.conversation_list(
        owner_id=_owner(request),
        cursor=request.GET.get("cursor") or None,
        limit=int(limit_raw),
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
    return JsonResponse(
        conversation_json(conversation) | {"messages": _messages(request, conversation_id)}
    )


def _markdown(conversation: dict[str, Any], branch: list[dict[str, Any]]) -> str:
    lines = [
        f"# {conversation['title']}",
        "",
        f"- Model: {conversation.get('model') or ''}",
        f"- Created: {conversation['created_at'].isoformat()}",
        f"- Exported: {timezone.now().isoformat()}",
    ]
    if conversation.get("system_prompt"):
        lines += ["", "## System", "", conversation["system_prompt"]]
    for message in branch:
        heading = message["role"].capitalize()
        if message["role"] == "assistant" and message.get("model"):
            heading += f" ({message['model']})"
        if message["state"] not in ("complete", "queued", "streaming"):
            heading += f" [{message['state']}]"
        lines += ["", f"## {heading}", "", message.get("content") or ""]
    return "\n".join(lines) + "\n"


@api_view("GET")
@login_required_api
def conversation_export(request: HttpRequest, conversation_id: str) -> HttpResponse:
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
    if export_format == "markdown":
        leaf = conversation.get("current_leaf_id")
        branch = selectors.message_path(message_id=leaf, owner_id=_owner(request)) if leaf else []
        response = HttpResponse(
            _markdown(conversation, branch), content_type="text/markdown; charset=utf-8"
        )
        extension = "md"
    else:
        body = {
            "conversation": conversation_json(conversation),
            "messages": _messages(request, conversation_id),
            "exported_at": timezone.now(),
        }
        response = JsonResponse(body, json_dumps_params={"ensure_ascii": False, "indent": 2})
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
