"""The review queue in the admin: list, filter, judge, allowlist in one step, daily counts."""

from __future__ import annotations

import pytest
from django.test import Client

from moderation.models import AllowlistEntry, ModerationEvent, ModerationRule
from moderation.selectors import event_counts_per_category_per_day, event_list
from moderation.services import moderate_input, rule_create

pytestmark = pytest.mark.urls("tests.moderation.urls")


def test_review_queue_lists_events_with_text_and_filters(
    rules_db: None, staff_client: Client
) -> None:
    moderate_input("I will kill you", user_id=None)
    moderate_input("mail me at a@example.com", user_id=None)
    response = staff_client.get("/admin/moderation/moderationevent/?category=violence")
    assert response.status_code == 200
    body = response.content.decode()
    assert "I will kill you" in body
    assert "[email]" not in body  # filtered out by category
    assert len(event_list(category="pii")) == 1


def test_event_detail_shows_the_text_in_context(rules_db: None, staff_client: Client) -> None:
    moderate_input("I will kill you", user_id=None)
    event = ModerationEvent.objects.get()
    response = staff_client.get(f"/admin/moderation/moderationevent/{event.pk}/change/")
    assert response.status_code == 200
    assert "I will kill you" in response.content.decode()


def test_reviewer_marks_events_confirmed(rules_db: None, staff_client: Client) -> None:
    moderate_input("I will kill you", user_id=None)
    event = ModerationEvent.objects.get()
    response = staff_client.post(
        "/admin/moderation/moderationevent/",
        {"action": "mark_confirmed", "_selected_action": [event.pk]},
    )
    assert response.status_code == 302
    event.refresh_from_db()
    assert event.review_status == "confirmed" and event.reviewed_by is not None


def test_false_positive_becomes_an_allowlist_entry_in_one_step(
    rules_db: None, staff_client: Client
) -> None:
    rule_create(pattern="bluefish", categories=["spam"])
    assert moderate_input("the bluefish song", user_id=None).action == "block"
    event = ModerationEvent.objects.get()
    staff_client.post(
        "/admin/moderation/moderationevent/",
        {"action": "make_allowlist_entry", "_selected_action": [event.pk]},
    )
    event.refresh_from_db()
    assert event.review_status == "false_positive"
    entry = AllowlistEntry.objects.get()
    assert entry.phrase == "bluefish" and entry.source_event_id == event.pk
    assert moderate_input("the bluefish song", user_id=None).action == "allow"


def test_counts_per_category_per_day(rules_db: None, staff_client: Client) -> None:
    moderate_input("I will kill you", user_id=None)
    moderate_input("I will kill him", user_id=None)
    moderate_input("mail me at a@example.com", user_id=None)
    counts = {(c, n) for _, c, n in event_counts_per_category_per_day(days=1)}
    assert counts == {("violence", 2), ("pii", 1)}
    response = staff_client.get("/admin/moderation/moderationevent/stats/")
    assert response.status_code == 200
    assert "violence" in response.content.decode()


def test_admin_refuses_a_regex_re2_cannot_run(rules_db: None, staff_client: Client) -> None:
    response = staff_client.post(
        "/admin/moderation/moderationrule/add/",
        {
            "pattern": "(?<=x)y",
            "kind": "regex",
            "categories": '["spam"]',
            "action": "block",
            "direction": "both",
            "enabled": "on",
            "note": "",
        },
    )
    assert response.status_code == 200  # the form again, with the error
    assert "not a valid RE2 pattern" in response.content.decode()
    assert not ModerationRule.objects.exists()


def test_admin_adds_a_rule_that_takes_effect(rules_db: None, staff_client: Client) -> None:
    response = staff_client.post(
        "/admin/moderation/moderationrule/add/",
        {
            "pattern": "bluefish",
            "kind": "word",
            "categories": '["spam"]',
            "action": "block",
            "direction": "both",
            "enabled": "on",
            "note": "test",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert moderate_input("a bluefish", user_id=None).action == "block"
