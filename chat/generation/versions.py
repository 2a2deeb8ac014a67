"""Which version of a model writes an answer (docs/models.md, "Canary").

A model answers with its active version, and with its canary (when it has one) for
`canary_share` percent of conversations. The choice is a hash of the conversation's id, so it
is the same at every turn and on every web process, and the conversation keeps it (pinned on
the conversation) until the user regenerates an answer, which chooses again with the
regeneration's own key. A pinned version that no longer serves (retired, or a canary stopped)
is chosen again.

The registry lives in `inference`, which chat does not import: the versions come from
`chat.catalog`'s snapshot of the registry, like the models.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from chat import catalog, services

# A share is a percentage; buckets give it two more digits of resolution.
BUCKETS = 10_000
ACTIVE, CANARY = "active", "canary"


@dataclass(frozen=True, slots=True)
class VersionChoice:
    id: int
    label: str


def bucket(key: str) -> int:
    """A stable number in [0, BUCKETS) for `key`: the same on every process and every run
    (unlike Python's `hash`)."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def choose(serving: list[dict[str, Any]], *, key: str) -> dict[str, Any] | None:
    """The version `key` falls on: the canary below its share's buckets, else the active one.
    `serving`: the model's active and canary versions (`id`, `label`, `state`,
    `canary_share`)."""
    active = next((row for row in serving if row["state"] == ACTIVE), None)
    canary = next((row for row in serving if row["state"] == CANARY), None)
    if canary is not None and bucket(key) < int(canary["canary_share"]) * BUCKETS // 100:
        return canary
    return active if active is not None else canary


def serving(*, model_name: str) -> list[dict[str, Any]]:
    return catalog.serving_versions(model_name=model_name)


def turn_version(
    *, owner_id: int, conversation: dict[str, Any], model_name: str, rechoose: str | None = None
) -> VersionChoice | None:
    """The version that answers the next turn of `conversation` with `model_name`, pinned on
    the conversation. `rechoose`: a regeneration's key (its request id): choose again, as a
    new draw. None: the model has no versions (its own row configures it)."""
    rows = serving(model_name=model_name)
    if not rows:
        return None
    pin = conversation.get("model_version") or {}
    pinned = next(
        (row for row in rows if pin.get("model") == model_name and pin.get("id") == row["id"]),
        None,
    )
    key = conversation["id"] if rechoose is None else f"{conversation['id']}:{rechoose}"
    row = pinned if pinned is not None and rechoose is None else choose(rows, key=key)
    if row is None:
        return None
    if pinned is None or row["id"] != pinned["id"]:
        services.conversation_version_pin(
            conversation_id=conversation["id"], owner_id=owner_id, model=model_name, id=row["id"]
        )
        conversation["model_version"] = {"model": model_name, "id": row["id"]}
    return VersionChoice(id=row["id"], label=row["label"])
