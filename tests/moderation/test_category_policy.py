"""Operators set each category's action (block, flag, allow) in the admin's *Category
policies* screen; the next message is judged with it (real PostgreSQL and Redis; the change
reaching another running process is tests/moderation/test_rules_live.py)."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from moderation.models import CategoryPolicy
from moderation.services import moderate_input, rule_create

pytestmark = pytest.mark.urls("tests.moderation.urls")


def _set(client: Client, category: str, action: str) -> None:
    existing = CategoryPolicy.objects.filter(category=category).first()
    url = (
        f"/admin/moderation/categorypolicy/{existing.pk}/change/"
        if existing
        else "/admin/moderation/categorypolicy/add/"
    )
    response = client.post(url, {"category": category, "action": action, "note": "test"})
    assert response.status_code == 302, response.content[:2000]


def test_admin_category_action_applies_to_the_next_message(
    rules_db: None, staff_client: Client
) -> None:
    rule_create(pattern="bluefish", categories=["violence"], action="block")
    assert moderate_input("a bluefish", user_id=None).action == "block"

    _set(staff_client, "violence", "flag")
    decision = moderate_input("a bluefish", user_id=None)
    assert (decision.action, decision.categories) == ("flag", ["violence"])

    _set(staff_client, "violence", "allow")
    assert moderate_input("a bluefish", user_id=None).action == "allow"

    CategoryPolicy.objects.filter(category="violence").delete()
    assert moderate_input("a bluefish", user_id=None).action == "block"


def test_admin_parent_category_covers_its_sub_categories(
    rules_db: None, staff_client: Client
) -> None:
    rule_create(pattern="bluefish", categories=["self-harm/intent"], action="block")
    _set(staff_client, "self-harm", "flag")
    assert moderate_input("a bluefish", user_id=None).action == "flag"
    # A row for the sub-category itself wins over its parent's.
    _set(staff_client, "self-harm/intent", "block")
    assert moderate_input("a bluefish", user_id=None).action == "block"


@override_settings(MODERATION_CATEGORY_ACTIONS=["violence=allow"])
def test_admin_action_wins_over_the_setting(rules_db: None, staff_client: Client) -> None:
    rule_create(pattern="bluefish", categories=["violence"], action="block")
    assert moderate_input("a bluefish", user_id=None).action == "allow"
    _set(staff_client, "violence", "block")
    assert moderate_input("a bluefish", user_id=None).action == "block"


def test_admin_refuses_an_unknown_category_or_action(rules_db: None, staff_client: Client) -> None:
    for data in (
        {"category": "spam", "action": "flag"},
        {"category": "pii", "action": "allow"},
        {"category": "violence", "action": "delete"},
    ):
        response = staff_client.post("/admin/moderation/categorypolicy/add/", data)
        assert response.status_code == 200  # the form again, with its error
        assert "Select a valid choice" in response.content.decode()
    assert not CategoryPolicy.objects.exists()


def test_category_policies_need_a_staff_login(rules_db: None) -> None:
    response = Client().get("/admin/moderation/categorypolicy/")
    assert response.status_code == 302 and "/login/" in response["Location"]
