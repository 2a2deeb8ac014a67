"""A streamed chat completion whose client leaves while the response's headers go out, before
the first chunk: Django never begins the body, so only the response's `close()` can clean up.
The generation must be stopped (the websocket's stop path) and the request's subscription to
the generation's group released, as for a client that leaves mid-stream. Django's ASGI
handler is driven directly, as Daphne drives it; a stand-in worker holds the generation."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.asgi import get_asgi_application

from tests.api.v1_support import (
    HeldCompletion,
    completion_request,
    completion_scope,
    stopped_and_released,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_client_that_leaves_before_the_first_chunk_stops_its_generation(
    held_completion: HeldCompletion,
) -> None:
    inbox = completion_request(stream=True)

    async def send(message: dict[str, Any]) -> None:
        await held_completion.send(message)
        if message["type"] == "http.response.start":
            inbox.put_nowait({"type": "http.disconnect"})  # gone while the headers go out
            await asyncio.Event().wait()  # the handler cancels this send

    scope = completion_scope(held_completion.raw_key)
    await asyncio.wait_for(get_asgi_application()(scope, inbox.get, send), 30)

    sent = held_completion.sent
    assert [message["type"] for message in sent] == ["http.response.start"]
    assert sent[0]["status"] == 200
    await stopped_and_released(held_completion.generation_id())
