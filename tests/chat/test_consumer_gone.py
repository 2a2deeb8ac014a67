"""A channel-layer event for a client that has just gone away is dropped, not raised: Daphne
refuses to send on a closed connection, and the consumer may still be handling events queued
before its disconnect (the soak found one such server error in 30 minutes)."""

from __future__ import annotations

from typing import Any

import pytest
from autobahn.exception import Disconnected

from chat.consumers import ChatConsumer


async def test_an_event_for_a_client_that_went_away_is_dropped_without_an_error() -> None:
    consumer = ChatConsumer()
    sent: list[dict[str, Any]] = []

    async def closed_connection(message: dict[str, Any]) -> None:
        sent.append(message)
        raise Disconnected("Attempt to send on a closed protocol")

    consumer.base_send = closed_connection

    await consumer.conversation_updated(
        {"type": "conversation.updated", "conversation_id": "c1", "title": "T"}
    )

    assert sent and sent[0]["type"] == "websocket.send"  # it was tried, and the error absorbed


async def test_other_send_failures_still_raise() -> None:
    consumer = ChatConsumer()

    async def broken(message: dict[str, Any]) -> None:
        raise ValueError("not a disconnect")

    consumer.base_send = broken

    with pytest.raises(ValueError):
        await consumer.send(text_data="{}")


async def test_events_are_handled_without_a_hop_to_channels_shared_thread(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Channels' own dispatch first closes old database connections on its one shared thread,
    so every ping would wait behind admission work there (bench/abuse.py)."""
    import channels.consumer

    hops: list[str] = []

    async def shared_thread_hop() -> None:
        hops.append("aclose_old_connections")

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", shared_thread_hop)
    consumer = ChatConsumer()
    sent: list[dict[str, Any]] = []

    async def record(message: dict[str, Any]) -> None:
        sent.append(message)

    consumer.base_send = record

    await consumer.dispatch({"type": "conversation.updated", "conversation_id": "c", "title": "T"})

    assert hops == []
    assert sent and sent[0]["type"] == "websocket.send"
