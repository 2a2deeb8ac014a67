"""`GET /api/usage`'s `per_key` (PostgreSQL): what each of the user's API keys consumed in the
report's period, the most tokens first, the owner's rows only, at most `USAGE_KEYS_MAX` keys."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from api import usage_api
from api.models import ApiKey
from api.selectors import api_key_usage_since
from api.services import api_key_revoke
from tests.inference.usage_support import record

pytestmark = pytest.mark.django_db(transaction=True)


def bill(
    user: User,
    key: ApiKey | None,
    *,
    tokens: tuple[int, int] = (10, 5),
    days_ago: int = 0,
    key_id: int | None = None,
) -> None:
    """`key`'s bill (None: the websocket's), or one naming `key_id` whatever key that is."""
    key_id = key_id if key_id is not None else (key.pk if key is not None else None)
    record(user, "smollm2-135m", tokens=tokens, days_ago=days_ago, api_key_id=key_id)


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_usage_lists_each_keys_requests_and_tokens_in_the_period_most_tokens_first(
    make_user: Callable[..., User], make_key: Callable[..., tuple[str, ApiKey]]
) -> None:
    user, other = make_user(), make_user()
    _, laptop = make_key(user, name="laptop")
    _, ci = make_key(user, name="ci")
    _, idle = make_key(user, name="idle")
    _, others = make_key(other, name="someone else's")
    bill(user, laptop, tokens=(100, 10))
    bill(user, laptop, tokens=(50, 5), days_ago=2)
    bill(user, ci, tokens=(300, 30))
    bill(user, ci, tokens=(7000, 700), days_ago=40)  # before the default 30 days
    bill(user, None, tokens=(9000, 900))  # the websocket: no key
    bill(other, others, tokens=(5000, 500))
    bill(other, None, tokens=(1, 1), key_id=laptop.pk)  # another owner's bill naming the key
    api_key_revoke(user_id=int(user.pk), key_id=ci.pk)  # a revoked key keeps its bills

    body = signed_in(user).get("/api/usage").json()

    assert body["per_key"] == [
        {"key_id": ci.pk, "name": "ci", "prefix": ci.prefix, "revoked": True,
         "generations": 1, "prompt_tokens": 300, "completion_tokens": 30, "total_tokens": 330,
         "cost": 0.25},
        {"key_id": laptop.pk, "name": "laptop", "prefix": laptop.prefix, "revoked": False,
         "generations": 2, "prompt_tokens": 150, "completion_tokens": 15, "total_tokens": 165,
         "cost": 0.5},
    ]  # fmt: skip
    assert body["per_key_truncated"] is False
    assert idle.pk not in {row["key_id"] for row in body["per_key"]}  # nothing billed
    # The period is the report's: ?days=1 keeps today's bills only; 60 days reach the old one.
    today = signed_in(user).get("/api/usage?days=1").json()["per_key"]
    assert [(row["name"], row["total_tokens"]) for row in today] == [("ci", 330), ("laptop", 110)]
    longer = signed_in(user).get("/api/usage?days=60").json()["per_key"]
    assert [(row["name"], row["total_tokens"]) for row in longer] == [("ci", 8030), ("laptop", 165)]
    # The other user's own bills only; the one naming the first user's key by id shows the id
    # with neither name nor prefix, and did not count for the first user above.
    theirs = signed_in(other).get("/api/usage").json()["per_key"]
    assert [(row["key_id"], row["name"], row["prefix"], row["total_tokens"]) for row in theirs] == [
        (others.pk, "someone else's", others.prefix, 5500),
        (laptop.pk, None, None, 2),
    ]


def test_a_key_of_another_owner_named_by_the_users_own_bill_shows_no_name_or_prefix(
    make_user: Callable[..., User], make_key: Callable[..., tuple[str, ApiKey]]
) -> None:
    user, other = make_user(), make_user()
    _, theirs = make_key(other, name="not yours")
    bill(user, None, key_id=theirs.pk)

    row = signed_in(user).get("/api/usage").json()["per_key"][0]

    assert (row["key_id"], row["name"], row["prefix"]) == (theirs.pk, None, None)


def test_per_key_is_bounded_the_most_used_keys_kept_and_the_cut_said(
    make_user: Callable[..., User],
    make_key: Callable[..., tuple[str, ApiKey]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    user = make_user()
    keys = [make_key(user, name=f"key {n}")[1] for n in range(4)]
    for n, key in enumerate(keys):
        bill(user, key, tokens=(10 * (n + 1), 0))
    monkeypatch.setattr(usage_api, "USAGE_KEYS_MAX", 2)

    body = signed_in(user).get("/api/usage").json()

    assert [row["name"] for row in body["per_key"]] == ["key 3", "key 2"]
    assert body["per_key_truncated"] is True
    # Two queries whatever the number of keys: the grouped bills, then the kept keys' names.
    with CaptureQueriesContext(connection) as queries:
        rows, truncated = api_key_usage_since(
            user_id=int(user.pk), since=timezone.now().date(), limit=3
        )
    assert len(queries) == 2
    assert len(rows) == 3 and truncated is True
    monkeypatch.setattr(usage_api, "USAGE_KEYS_MAX", 4)
    assert signed_in(user).get("/api/usage").json()["per_key_truncated"] is False


def test_usage_without_api_use_has_an_empty_per_key_and_still_needs_a_user(
    make_user: Callable[..., User],
) -> None:
    user = make_user()
    bill(user, None)

    body: dict[str, Any] = signed_in(user).get("/api/usage").json()

    assert body["per_key"] == [] and body["per_key_truncated"] is False
    assert body["total"]["generations"] == 1  # the rest of the report is unchanged
    assert Client().get("/api/usage").status_code == 401
    assert signed_in(user).get("/api/usage?days=0").status_code == 400
