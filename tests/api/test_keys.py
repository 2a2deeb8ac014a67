"""API keys: how they are made, stored, found, expired and revoked, and their REST endpoints."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from accounts.selectors import LAST_USED_RESOLUTION
from accounts.services import token_issue
from api.models import SCOPES, ApiKey
from api.selectors import api_key_authenticate
from api.services import api_key_create, api_key_revoke
from config.errors import ApiError

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_key_is_random_marked_and_stored_only_as_its_hash(
    make_user: Callable[..., User],
) -> None:
    user = make_user()
    raw, key = api_key_create(user=user, name="laptop")
    other, _ = api_key_create(user=user, name="ci")

    assert raw.startswith("sk-") and raw != other
    assert len(raw) >= 3 + 43  # 32 random bytes, base64url
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert key.prefix == raw[: len(key.prefix)] and len(key.prefix) == 11
    stored = [str(value) for value in ApiKey.objects.values_list().get(pk=key.pk)]
    assert raw not in stored
    assert key.scopes == list(SCOPES) and key.expires_at is None


def test_a_live_key_finds_its_user_and_records_its_use_at_most_once_a_minute(
    make_key: Callable[..., tuple[str, ApiKey]],
) -> None:
    raw, key = make_key()

    found = api_key_authenticate(raw_key=raw)
    first_use = ApiKey.objects.get(pk=key.pk).last_used_at
    api_key_authenticate(raw_key=raw)

    assert found is not None and found.pk == key.pk and found.user_id == key.user_id
    assert first_use is not None
    assert ApiKey.objects.get(pk=key.pk).last_used_at == first_use
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=first_use - LAST_USED_RESOLUTION)
    api_key_authenticate(raw_key=raw)
    assert ApiKey.objects.get(pk=key.pk).last_used_at > first_use - LAST_USED_RESOLUTION


@pytest.mark.parametrize("raw", ["", "sk-unknown", "chat_abc", "sk-" + "x" * 500, None], ids=str)
def test_unknown_or_malformed_keys_find_nobody(
    make_key: Callable[..., tuple[str, ApiKey]], raw: object
) -> None:
    make_key()
    assert api_key_authenticate(raw_key=raw) is None


def test_revoked_expired_and_suspended_owners_keys_find_nobody(
    make_key: Callable[..., tuple[str, ApiKey]], make_user: Callable[..., User]
) -> None:
    revoked, revoked_key = make_key()
    expired, expired_key = make_key(expires_in_days=1)
    suspended_user = make_user()
    suspended, _ = make_key(user=suspended_user)
    assert api_key_revoke(user_id=revoked_key.user_id, key_id=revoked_key.pk)
    ApiKey.objects.filter(pk=expired_key.pk).update(expires_at=timezone.now() - timedelta(1))
    User.objects.filter(pk=suspended_user.pk).update(is_active=False)

    assert api_key_authenticate(raw_key=revoked) is None
    assert api_key_authenticate(raw_key=expired) is None
    assert api_key_authenticate(raw_key=suspended) is None


def test_a_password_change_leaves_the_keys_to_their_owner(
    make_key: Callable[..., tuple[str, ApiKey]], make_user: Callable[..., User]
) -> None:
    user = make_user()
    raw, _ = make_key(user=user)
    user.set_password("another long passphrase 99")
    user.save()
    assert api_key_authenticate(raw_key=raw) is not None


def test_only_the_owner_revokes_a_key(make_key: Callable[..., tuple[str, ApiKey]]) -> None:
    _, key = make_key()
    assert not api_key_revoke(user_id=key.user_id + 1000, key_id=key.pk)
    assert api_key_revoke(user_id=key.user_id, key_id=key.pk)
    assert not api_key_revoke(user_id=key.user_id, key_id=key.pk)  # once


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": 5}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "k", "scopes": []}, "scopes"),
        ({"name": "k", "scopes": ["admin"]}, "scopes"),
        ({"name": "k", "scopes": "chat"}, "scopes"),
        ({"name": "k", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "k", "expires_in_days": True}, "expires_in_days"),
        ({"name": "k", "expires_in_days": 100_000}, "expires_in_days"),
        ({"name": "k", "store_conversations": "yes"}, "store_conversations"),
    ],
)
def test_invalid_key_fields_are_refused_by_name(
    make_user: Callable[..., User], fields: dict, field: str
) -> None:
    with pytest.raises(ApiError) as raised:
        api_key_create(user=make_user(), **fields)
    assert raised.value.code == "bad_request" and raised.value.fields == {
        field: raised.value.fields[field]
    }


def test_a_user_has_a_bounded_number_of_keys(
    make_user: Callable[..., User], settings: object
) -> None:
    settings.API_KEYS_PER_USER = 2  # type: ignore[attr-defined]
    user = make_user()
    api_key_create(user=user, name="a")
    api_key_create(user=user, name="b")
    with pytest.raises(ApiError) as raised:
        api_key_create(user=user, name="c")
    assert raised.value.code == "conflict"


# --- /api/keys ---------------------------------------------------------------------------------


def bearer_client(user: User) -> Client:
    raw, _ = token_issue(user=user)
    return Client(headers={"Authorization": f"Bearer {raw}"})


def test_create_list_and_revoke_keys_over_rest(make_user: Callable[..., User]) -> None:
    client = bearer_client(make_user())

    created = client.post(
        "/api/keys",
        {"name": "ci", "scopes": ["models", "chat"], "expires_in_days": 30},
        content_type="application/json",
    )
    listed = client.get("/api/keys")
    body = created.json()

    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    assert set(body) == {
        "id", "name", "prefix", "key", "scopes", "store_conversations", "created_at",
        "expires_at", "last_used_at",
    }  # fmt: skip
    assert body["store_conversations"] is False
    assert body["key"].startswith(body["prefix"]) and body["scopes"] == ["chat", "models"]
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["results"]] == [body["id"]]
    assert "key" not in listed.json()["results"][0]
    assert body["key"] not in listed.content.decode()

    assert client.delete(f"/api/keys/{body['id']}").status_code == 204
    assert client.get("/api/keys").json()["results"] == []
    assert api_key_authenticate(raw_key=body["key"]) is None


def test_another_users_key_is_not_found_and_stays_live(
    make_key: Callable[..., tuple[str, ApiKey]], make_user: Callable[..., User]
) -> None:
    raw, key = make_key()
    intruder = bearer_client(make_user())

    assert intruder.delete(f"/api/keys/{key.pk}").status_code == 404
    assert intruder.get("/api/keys").json()["results"] == []
    assert api_key_authenticate(raw_key=raw) is not None


def test_keys_need_a_signed_in_user_and_a_valid_body(make_user: Callable[..., User]) -> None:
    assert Client().get("/api/keys").status_code == 401
    assert Client().post("/api/keys", {}, content_type="application/json").status_code in (401, 403)
    response = bearer_client(make_user()).post(
        "/api/keys", {"name": "k", "scopes": ["root"]}, content_type="application/json"
    )
    assert response.status_code == 400 and "scopes" in response.json()["error"]["fields"]


def test_a_session_needs_the_csrf_token_to_create_a_key(make_user: Callable[..., User]) -> None:
    user = make_user()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)

    refused = client.post("/api/keys", {"name": "k"}, content_type="application/json")
    token = client.get("/api/auth/csrf").json()["csrf_token"]
    allowed = client.post(
        "/api/keys", {"name": "k"}, content_type="application/json", headers={"X-CSRFToken": token}
    )

    assert refused.status_code == 403
    assert allowed.status_code == 201


def test_each_key_lists_what_its_generations_consumed(
    make_key: Callable[..., tuple[str, ApiKey]], make_user: Callable[..., User]
) -> None:
    from decimal import Decimal

    from inference.models import UsageRecord

    user, stranger = make_user(), make_user()
    _, used = make_key(user=user, name="used")
    _, idle = make_key(user=user, name="idle")
    _, foreign = make_key(user=stranger)
    for index, (key, tokens) in enumerate([(used, 10), (used, 5), (foreign, 99)]):
        UsageRecord.objects.create(
            generation_id=f"g{index}",
            source="api",
            api_key_id=key.pk,
            user_id=key.user_id,
            model="m",
            prompt_tokens=1,
            completion_tokens=tokens,
            cost=Decimal("0.5"),
            finish_reason="stop",
        )

    listed = bearer_client(user).get("/api/keys").json()["results"]

    usage = {item["name"]: item["usage"] for item in listed}
    assert usage["used"] == {
        "generations": 2, "prompt_tokens": 2, "completion_tokens": 15, "cost": 1.0
    }  # fmt: skip
    assert usage["idle"]["generations"] == 0
    assert idle.pk in {item["id"] for item in listed}


def test_bills_from_before_the_source_column_are_marked_from_the_apis_generations(
    make_key: Callable[..., tuple[str, ApiKey]],
) -> None:
    """The data migration `api.0003`: a bill whose generation the API marked becomes the API's,
    with the key; any other stays the websocket's."""
    import importlib

    from django.apps import apps

    from api.models import ApiGeneration
    from inference.models import UsageRecord

    backfill = importlib.import_module("api.migrations.0003_usage_source_backfill")
    _, key = make_key()
    for generation_id in ("from-api", "from-ws"):
        UsageRecord.objects.create(
            generation_id=generation_id, user_id=key.user_id, model="m", finish_reason="stop"
        )
    ApiGeneration.objects.create(generation_id="from-api", key=key, user_id=key.user_id, model="m")

    backfill.api_sources(apps, None)

    marked = dict(UsageRecord.objects.values_list("generation_id", "source"))
    keys = dict(UsageRecord.objects.values_list("generation_id", "api_key_id"))
    assert marked == {"from-api": "api", "from-ws": "ws"}
    assert keys == {"from-api": key.pk, "from-ws": None}


def test_staff_list_and_revoke_keys_in_the_admin_and_a_revoked_key_stops_working(
    make_key: Callable[..., tuple[str, ApiKey]], make_user: Callable[..., User]
) -> None:
    staff = User.objects.create_superuser("staff@example.org", "pw")
    owner = make_user()
    raw, key = make_key(user=owner, name="laptop")
    _, other = make_key(user=owner, name="ci")
    client = Client()
    client.force_login(staff)

    listed = client.get("/admin/api/apikey/")
    searched = client.get(f"/admin/api/apikey/?q={key.prefix}")
    revoked = client.post(
        "/admin/api/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
        follow=True,
    )

    assert listed.status_code == 200
    assert {k.pk for k in listed.context["cl"].result_list} == {key.pk, other.pk}
    assert key.prefix in listed.content.decode() and "laptop" in listed.content.decode()
    assert [k.pk for k in searched.context["cl"].result_list] == [key.pk]
    assert "Revoked 1 key(s)." in revoked.content.decode()
    key.refresh_from_db()
    other.refresh_from_db()
    assert key.revoked_at is not None and other.revoked_at is None
    assert api_key_authenticate(raw_key=raw) is None
    assert client.get("/admin/api/apikey/add/").status_code == 403
