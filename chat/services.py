"""Writes to the conversation store: conversations, messages and feedback (a generation's own
writes, its checkpoints and its final write, are in `chat.generation.lifecycle`).

Every function takes the owner and puts it in every filter: another owner's id behaves
exactly like an id that does not exist. Invalid input raises `ChatError("bad_request", ...)`
(with `fields`) before anything is written; a missing conversation or parent message raises
`ChatError("not_found", ...)` where the caller must be told, else the function returns None.

Messages are ordered inside their conversation by `position`, taken from the conversation's
`message_count` counter (`$inc`, atomic on every backend), so two writers never tie.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.dispatch import Signal
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from chat import selectors
from chat.errors import ChatError
from chat.generation.record import SOURCES
from chat.store import CONVERSATIONS, MESSAGES, document_out, get_db, new_id, now

TITLE_MAX_CHARS = 200
# Where a conversation's title came from (`title_source`).
TITLE_PROVISIONAL, TITLE_BY_MODEL, TITLE_BY_USER = "first_message", "model", "user"
MODEL_MAX_CHARS = 128
SYSTEM_PROMPT_MAX_CHARS = 32_000
REQUEST_ID_MAX_CHARS = 128
FEEDBACK_COMMENT_MAX_CHARS = 2_000
FEEDBACK_RATINGS = (1, -1)


def _invalid(field: str, problem: str) -> ChatError:
    return ChatError("bad_request", f"{field}: {problem}", fields={field: [problem]})


def owner_checked(owner_id: int) -> int:
    # A user object or "1" in a filter would silently match nothing, or the wrong thing.
    if not isinstance(owner_id, int) or isinstance(owner_id, bool):
        raise TypeError("owner_id must be the user's integer primary key")
    return owner_id


def _title(title: Any) -> str:
    if not isinstance(title, str):
        raise _invalid("title", "must be a string")
    cleaned = " ".join(title.split())
    if not cleaned:
        raise _invalid("title", "must not be empty")
    if len(cleaned) > TITLE_MAX_CHARS:
        raise _invalid("title", f"at most {TITLE_MAX_CHARS} characters")
    return cleaned


def _system_prompt(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid("system_prompt", "must be a string or null")
    if len(value) > SYSTEM_PROMPT_MAX_CHARS:
        raise _invalid("system_prompt", f"at most {SYSTEM_PROMPT_MAX_CHARS} characters")
    return value or None


def _model(model: Any) -> str:
    if not isinstance(model, str) or not 0 < len(model) <= MODEL_MAX_CHARS:
        raise _invalid("model", f"must be a name of 1 to {MODEL_MAX_CHARS} characters")
    return model


def live_conversation(conversation_id: str, owner_id: int) -> dict[str, Any]:
    return {"_id": conversation_id, "owner_id": owner_id, "deleted": {"$ne": True}}


# --- conversations ----------------------------------------------------------------------------


def conversation_create(
    *,
    owner_id: int,
    title: str,
    model: str,
    system_prompt: str | None = None,
    model_choice: str | None = None,
) -> dict:
    """A new conversation answered by `model`. `model_choice`: what the user asked for when it
    is not that model itself ("auto": the router chose `model`), which the conversation's
    next turns ask for again; `model` keeps the first answer's model, as before."""
    moment = now()
    document = {
        "_id": new_id(),
        "owner_id": owner_checked(owner_id),
        "title": _title(title),
        # Provisional: the first message, until the model titles the first exchange
        # (inference.titles) or the user renames it ("user"; never overwritten then).
        "title_source": TITLE_PROVISIONAL,
        "model": _model(model),
        "system_prompt": _system_prompt(system_prompt),
        "created_at": moment,
        "updated_at": moment,
        "current_leaf_id": None,
        "archived": False,
        "deleted": False,
        "message_count": 0,
    }
    if model_choice is not None and model_choice != model:
        document["model_choice"] = _model(model_choice)
    get_db()[CONVERSATIONS].insert_one(document)
    return document_out(document)  # type: ignore[return-value]


def conversation_update(
    *,
    conversation_id: str,
    owner_id: int,
    title: str | None = None,
    archived: bool | None = None,
    system_prompt: str | None = None,
) -> dict | None:
    """Rename, archive or unarchive, change the system prompt ("" clears it). None: no such
    conversation. Does not move the conversation in the list (only new messages do)."""
    owner_checked(owner_id)
    changes: dict[str, Any] = {}
    if title is not None:
        changes["title"] = _title(title)
        changes["title_source"] = TITLE_BY_USER
    if archived is not None:
        if not isinstance(archived, bool):
            raise _invalid("archived", "must be true or false")
        changes["archived"] = archived
    if system_prompt is not None:
        changes["system_prompt"] = _system_prompt(system_prompt)
    if not selectors.valid_id(conversation_id):
        return None
    if not changes:
        return selectors.conversation_get(conversation_id=conversation_id, owner_id=owner_id)
    document = get_db()[CONVERSATIONS].find_one_and_update(
        live_conversation(conversation_id, owner_id),
        {"$set": changes},
        return_document=ReturnDocument.AFTER,
    )
    return document_out(document)


def conversation_title_generated(*, conversation_id: str, owner_id: int, title: str) -> dict | None:
    """Replace a provisional title with the model's. None when there is no such conversation
    or its title is no longer provisional (the user renamed it, or it was titled already)."""
    owner_checked(owner_id)
    if not selectors.valid_id(conversation_id):
        return None
    document = get_db()[CONVERSATIONS].find_one_and_update(
        live_conversation(conversation_id, owner_id)
        | {"title_source": {"$nin": [TITLE_BY_USER, TITLE_BY_MODEL]}},
        {"$set": {"title": _title(title), "title_source": TITLE_BY_MODEL}},
        return_document=ReturnDocument.AFTER,
    )
    return document_out(document)


def conversation_delete(*, conversation_id: str, owner_id: int) -> bool:
    """Soft delete: the conversation and its messages disappear from every list, lookup and
    search, and its running generations can no longer write. False: no such conversation."""
    owner_checked(owner_id)
    if not selectors.valid_id(conversation_id):
        return False
    db = get_db()
    if db[CONVERSATIONS].find_one(live_conversation(conversation_id, owner_id)) is None:
        return False
    moment = now()
    # Messages first: should this stop half-way, the conversation is still listed and a
    # repeated delete finishes the job.
    db[MESSAGES].update_many(
        {"conversation_id": conversation_id, "owner_id": owner_id},
        {"$set": {"deleted": True, "updated_at": moment}},
    )
    result = db[CONVERSATIONS].update_one(
        live_conversation(conversation_id, owner_id),
        {"$set": {"deleted": True, "deleted_at": moment, "current_leaf_id": None}},
    )
    return result.modified_count == 1


def conversation_hide(*, conversation_id: str, owner_id: int) -> None:
    """Take a conversation out of every list, lookup and search at once, while its messages stay
    readable by id and generation: the stand-in conversation of a stateless API request, which
    its worker reads and ends like any other (`chat.generation.admission.stateless_prepare`)."""
    owner_checked(owner_id)
    if selectors.valid_id(conversation_id):
        get_db()[CONVERSATIONS].update_one(
            {"_id": conversation_id, "owner_id": owner_id},
            {"$set": {"deleted": True, "deleted_at": now(), "current_leaf_id": None}},
        )


def conversation_version_pin(*, conversation_id: str, owner_id: int, model: str, id: int) -> None:
    """Pin the model version that answers the conversation's turns (chat.generation.versions)."""
    owner_checked(owner_id)
    if selectors.valid_id(conversation_id):
        get_db()[CONVERSATIONS].update_one(
            {"_id": conversation_id, "owner_id": owner_id},
            {"$set": {"model_version": {"model": str(model), "id": int(id)}}},
        )


def conversation_purge(*, conversation_id: str, owner_id: int) -> None:
    """Remove a conversation and its messages from the store for good (a stateless request's,
    once its answer has ended)."""
    owner_checked(owner_id)
    if not selectors.valid_id(conversation_id):
        return
    db = get_db()
    db[MESSAGES].delete_many({"conversation_id": conversation_id, "owner_id": owner_id})
    db[CONVERSATIONS].delete_many({"_id": conversation_id, "owner_id": owner_id})


# --- messages ---------------------------------------------------------------------------------


def _parent_check(
    *, conversation_id: str, owner_id: int, parent_id: str | None, role: str | None
) -> None:
    if parent_id is None:
        return
    parent = selectors.message_get(message_id=parent_id, owner_id=owner_id)
    if parent is None or parent["conversation_id"] != conversation_id:
        raise ChatError("not_found", "No such message.")
    if role is not None and parent["role"] != role:
        raise _invalid("parent_id", f"must be a {role} message")


def _message_insert(*, conversation_id: str, owner_id: int, document: dict[str, Any]) -> dict:
    """Number the message in its conversation, store it, and make it the current leaf."""
    db = get_db()
    conversation = db[CONVERSATIONS].find_one_and_update(
        live_conversation(conversation_id, owner_id),
        {"$inc": {"message_count": 1}},
        return_document=ReturnDocument.AFTER,
    )
    if conversation is None:
        raise ChatError("not_found", "No such conversation.")
    moment = now()
    document.update(
        _id=new_id(),
        conversation_id=conversation_id,
        owner_id=owner_id,
        position=conversation["message_count"],
        created_at=moment,
        updated_at=moment,
        feedback=None,
        deleted=False,
    )
    try:
        db[MESSAGES].insert_one(document)
    except DuplicateKeyError:
        db[CONVERSATIONS].update_one(
            {"_id": conversation_id, "owner_id": owner_id}, {"$inc": {"message_count": -1}}
        )
        raise
    db[CONVERSATIONS].update_one(
        live_conversation(conversation_id, owner_id),
        {"$set": {"current_leaf_id": document["_id"], "updated_at": moment}},
    )
    return document_out(document)  # type: ignore[return-value]


def message_create_user(
    *,
    conversation_id: str,
    owner_id: int,
    parent_id: str | None,
    content: str,
    request_id: str | None,
) -> dict:
    """Store what the user typed under `parent_id` (None: a new root, e.g. an edited first
    message; pass the conversation's `current_leaf_id` to continue the current branch).

    Raises `DuplicateKeyError` when this owner already used `request_id` (look the original
    up with `selectors.message_by_request`), `ChatError` for a missing conversation or parent.
    """
    owner_checked(owner_id)
    if not isinstance(content, str) or not content.strip():
        raise _invalid("content", "must not be empty")
    if len(content) > settings.CHAT_MAX_CONTENT_CHARS:
        raise ChatError(
            "too_large",
            f"content: at most {settings.CHAT_MAX_CONTENT_CHARS} characters",
            fields={"content": [f"at most {settings.CHAT_MAX_CONTENT_CHARS} characters"]},
        )
    if request_id is not None and (
        not isinstance(request_id, str) or not 0 < len(request_id) <= REQUEST_ID_MAX_CHARS
    ):
        raise _invalid("request_id", f"must be 1 to {REQUEST_ID_MAX_CHARS} characters")
    if not selectors.valid_id(conversation_id):
        raise ChatError("not_found", "No such conversation.")
    _parent_check(
        conversation_id=conversation_id, owner_id=owner_id, parent_id=parent_id, role=None
    )
    document: dict[str, Any] = {
        "parent_id": parent_id,
        "role": "user",
        "content": content,
        "state": "complete",
        "model": None,
    }
    if request_id is not None:  # absent, not null: the unique index skips it
        document["request_id"] = request_id
    return _message_insert(conversation_id=conversation_id, owner_id=owner_id, document=document)


TURN_ROLES = ("system", "user", "assistant")


def message_create_turn(
    *, conversation_id: str, owner_id: int, parent_id: str | None, role: str, content: str
) -> dict:
    """Store one finished message of any role under `parent_id`, as a client supplied it (a
    stateless request brings its whole conversation, earlier answers included)."""
    owner_checked(owner_id)
    if role not in TURN_ROLES:
        raise _invalid("role", f"must be one of {', '.join(TURN_ROLES)}")
    if not isinstance(content, str) or not content.strip():
        raise _invalid("content", "must not be empty")
    if not selectors.valid_id(conversation_id):
        raise ChatError("not_found", "No such conversation.")
    _parent_check(
        conversation_id=conversation_id, owner_id=owner_id, parent_id=parent_id, role=None
    )
    document: dict[str, Any] = {
        "parent_id": parent_id,
        "role": role,
        "content": content,
        "state": "complete",
        "model": None,
    }
    return _message_insert(conversation_id=conversation_id, owner_id=owner_id, document=document)


def message_create_assistant(
    *,
    conversation_id: str,
    owner_id: int,
    parent_id: str,
    model: str,
    options: dict | None = None,
    generation_id: str | None = None,
    queue: str | None = None,
    source: str | None = None,
    api_key_id: int | None = None,
    model_version: Any = None,
) -> dict:
    """A queued answer to the user message `parent_id`, with a new `generation_id` (or the one
    given, chosen by the caller with `new_id()`); it becomes the conversation's current leaf.
    `options` (temperature, max_tokens, system_prompt) are stored for the worker, and `queue`,
    the model queue it waits on, for whoever ends it (see `chat.generation.lifecycle`).
    `source` and `api_key_id` (`chat.generation.record.SOURCES`; None: the websocket's) are
    for its bill, which the worker writes; `model_version` (a `VersionChoice`), the model
    version chosen to write it."""
    owner_checked(owner_id)
    if generation_id is not None and not selectors.valid_id(generation_id):
        raise _invalid("generation_id", "must be an id")
    if source is not None and source not in SOURCES:
        raise _invalid("source", f"one of {', '.join(SOURCES)}")
    if api_key_id is not None and (isinstance(api_key_id, bool) or not isinstance(api_key_id, int)):
        raise _invalid("api_key_id", "must be an integer")
    if options is not None and not isinstance(options, dict):
        raise _invalid("options", "must be an object")
    if not selectors.valid_id(conversation_id):
        raise ChatError("not_found", "No such conversation.")
    if not selectors.valid_id(parent_id):
        raise ChatError("not_found", "No such message.")
    _parent_check(
        conversation_id=conversation_id, owner_id=owner_id, parent_id=parent_id, role="user"
    )
    document: dict[str, Any] = {
        "parent_id": parent_id,
        "role": "assistant",
        "content": "",
        "state": "queued",
        "model": _model(model),
        "options": dict(options or {}),
        "generation_id": generation_id or new_id(),
        "seq": 0,
        "usage": None,
        "finish_reason": None,
        "heartbeat_at": now(),
    }
    if queue is not None:
        document["queue"] = queue
    if source is not None:
        document["source"] = source
    if api_key_id is not None:
        document["api_key_id"] = api_key_id
    if model_version is not None:
        # The version chosen to write it (`chat.generation.versions.VersionChoice`); the
        # worker records the one it actually ran on when it starts.
        document["model_version_id"] = int(model_version.id)
        document["model_version"] = str(model_version.label)
    return _message_insert(conversation_id=conversation_id, owner_id=owner_id, document=document)


# Sent after a user rates an answer: sender the store's message, `generation_id`, `owner_id`,
# `rating` (1 or -1). The bill mirrors it for per-version statistics (inference.versions).
feedback_changed = Signal()


def message_feedback_set(
    *, message_id: str, owner_id: int, rating: int, comment: str
) -> dict | None:
    """The user's rating (1 or -1) and comment on an assistant message; a new one replaces the
    old. None: no such message."""
    owner_checked(owner_id)
    if isinstance(rating, bool) or rating not in FEEDBACK_RATINGS:
        raise _invalid("rating", "must be 1 or -1")
    if not isinstance(comment, str):
        raise _invalid("comment", "must be a string")
    if len(comment) > FEEDBACK_COMMENT_MAX_CHARS:
        raise _invalid("comment", f"at most {FEEDBACK_COMMENT_MAX_CHARS} characters")
    message = selectors.message_get(message_id=message_id, owner_id=owner_id)
    if message is None:
        return None
    if message["role"] != "assistant":
        raise ChatError("bad_request", "Feedback is for assistant messages only.")
    get_db()[MESSAGES].update_one(
        {"_id": message_id, "owner_id": owner_id, "deleted": {"$ne": True}},
        {"$set": {"feedback": {"rating": rating, "comment": comment}, "feedback_at": now()}},
    )
    if message.get("generation_id"):
        feedback_changed.send(
            sender=MESSAGES,
            generation_id=message["generation_id"],
            owner_id=owner_id,
            rating=rating,
        )
    return selectors.message_get(message_id=message_id, owner_id=owner_id)
