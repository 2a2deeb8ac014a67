"""A chat completion that is NOT streamed, whose client disconnects while the answer is being
generated: nothing will read the answer, so the generation must be stopped (the websocket's
stop path, which aborts the request in the engine) and the request's subscription to the
generation's group released, as for a streamed one. The application Daphne serves
(`config.asgi.application`) is driven directly; a stand-in worker holds the generation."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from api.v1 import completions
from chat.generation import stop
from tests.api.v1_support import (
    HeldCompletion,
    completion_request,
    completion_scope,
    group_subscribers,
    stopped_and_released,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_client_that_leaves_a_plain_completion_stops_its_generation(
    held_completion: HeldCompletion,
) -> None:
    from config.asgi import application

    inbox = completion_request(stream=False)
    scope = completion_scope(held_completion.raw_key)
    served = asyncio.ensure_future(application(scope, inbox.get, held_completion.send))
    async with asyncio.timeout(30):
        while not held_completion.worker.tasks:  # admitted and handed to the (holding) worker
            await asyncio.sleep(0.02)
    generation_id = held_completion.generation_id()
    assert await sync_to_async(group_subscribers)(generation_id) == 1
    assert not await sync_to_async(stop.requested)(generation_id=generation_id)

    inbox.put_nowait({"type": "http.disconnect"})  # the client goes away while it waits
    await asyncio.wait_for(served, 10)

    await stopped_and_released(generation_id)
    assert not any(message["type"] == "http.response.body" for message in held_completion.sent)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
async def test_a_client_that_leaves_during_admission_stops_the_generation_admitted_after(
    stream: bool, held_completion: HeldCompletion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admission runs on its own thread, which a disconnect cannot interrupt: a request whose
    client left while it waited there (behind a burst, say) is still admitted and enqueued
    afterwards. Nothing would read that answer, so it must be stopped once it exists."""
    from config.asgi import application

    entered, release = threading.Event(), threading.Event()
    admit = completions._admitted

    def slow_admission(**arguments: Any) -> Any:
        entered.set()
        release.wait(30)
        return admit(**arguments)

    monkeypatch.setattr(completions, "_admitted", slow_admission)
    inbox = completion_request(stream=stream)
    scope = completion_scope(held_completion.raw_key)
    served = asyncio.ensure_future(application(scope, inbox.get, held_completion.send))
    assert await asyncio.to_thread(entered.wait, 30)
    inbox.put_nowait({"type": "http.disconnect"})  # gone while its request is being admitted
    await asyncio.wait_for(served, 10)
    release.set()  # admission goes on, and enqueues the generation

    async with asyncio.timeout(10):
        while not held_completion.worker.tasks:
            await asyncio.sleep(0.02)
    await stopped_and_released(held_completion.generation_id())
    assert held_completion.sent == []  # the view never answered: the client was gone


async def test_admission_finds_the_turns_embedded_ahead_of_its_thread(
    held_completion: HeldCompletion, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Input moderation's embedding runs ahead of the one admission thread, batched with other
    requests' (moderation.prefetch), as for a websocket `chat.send`; the admission thread runs
    in the request's context and finds those scores."""
    import weakref

    from config.asgi import application
    from moderation import prefetch
    from moderation.checks import semantic

    embedded: list[str] = []

    def compute(texts: list[str]) -> dict[str, Any]:
        embedded.extend(texts)
        return {text: [1.0] for text in texts}

    monkeypatch.setattr(prefetch, "_batchers", weakref.WeakKeyDictionary())
    monkeypatch.setattr(prefetch, "_semantic_prefetch", compute)
    seen: list[dict[str, Any]] = []
    admit = completions._admitted

    def admission(**arguments: Any) -> Any:
        pending = semantic.PREFETCHED.get()
        seen.append(pending.rows() if isinstance(pending, semantic.Pending) else {})
        return admit(**arguments)

    monkeypatch.setattr(completions, "_admitted", admission)
    inbox = completion_request(stream=False)
    served = asyncio.ensure_future(
        application(completion_scope(held_completion.raw_key), inbox.get, held_completion.send)
    )
    async with asyncio.timeout(30):
        while not held_completion.worker.tasks:
            await asyncio.sleep(0.02)
    inbox.put_nowait({"type": "http.disconnect"})
    await asyncio.wait_for(served, 10)
    await stopped_and_released(held_completion.generation_id())

    assert embedded == ["Say hello."]
    assert seen == [{"Say hello.": [1.0]}]
