"""`python manage.py store_indexes`: indexes on a real server, a clear skip on stand-ins."""

from __future__ import annotations

import io
from typing import Any

import mongomock
import pytest
from django.core.management import call_command

from chat.management.commands import store_indexes


def _run() -> str:
    out = io.StringIO()
    call_command("store_indexes", stdout=out)
    return out.getvalue()


@pytest.mark.parametrize("url", ["mongomock://", "embedded://{tmp}"])
def test_stand_ins_are_skipped_with_a_reason(settings: Any, tmp_path: Any, url: str) -> None:
    settings.MONGODB_URL = url.format(tmp=tmp_path / "store")

    output = _run()

    assert output.startswith("Skipped:")
    assert "stand-in" in output


def test_on_a_server_it_creates_every_index(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A server is not available here: mongomock stands in for pymongo's Database.
    settings.MONGODB_URL = "mongodb://db.invalid:27017"
    server_db = mongomock.MongoClient().chat
    monkeypatch.setattr(store_indexes, "get_db", lambda: server_db)

    output = _run()

    messages = server_db["messages"].index_information()
    conversations = server_db["conversations"].index_information()
    assert conversations["owner_updated"]["key"] == [("owner_id", 1), ("updated_at", -1)]
    assert messages["generation_unique"]["unique"] and messages["generation_unique"]["sparse"]
    assert messages["owner_request_unique"]["partialFilterExpression"] == {
        "request_id": {"$type": "string"}
    }
    assert messages["conversation_owner"]["key"] == [("conversation_id", 1), ("owner_id", 1)]
    assert "owner_request_unique" in output
