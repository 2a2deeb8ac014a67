"""Fixtures and helpers for the consumer tests: the real ASGI stack (auth middleware, router,
consumer) in process, with `WebsocketCommunicator`, the store on mongomock, real PostgreSQL and
real Redis (channel layer, limits). Only the Celery hand-off is recorded instead of sent, so
that no worker anywhere picks up a test's generation."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from pytest_django import Settings

from accounts.models import User
from accounts.services import token_issue
from accounts.ws_auth import WebsocketAuthMiddleware
from chat.generation import admission, names
from chat.protocol import server_message_adapter
from chat.routing import websocket_urlpatterns

PASSWORD = "correct horse battery staple 42"
MODEL = "smollm2-135m"
QUEUE = "inference.smollm2-135m"


@pytest.fixture
def isolated_redis(settings: Settings) -> Iterator[str]:
    """A Redis key prefix (limits) and channel-layer prefix of this test's own."""
    prefix = f"chat-test-{uuid.uuid4().hex[:12]}"
    caches = {name: dict(config) for name, config in django_settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = prefix
    settings.CACHES = caches
    layers = json.loads(json.dumps(django_settings.CHANNEL_LAYERS))
    layers["default"]["CONFIG"]["prefix"] = prefix
    settings.CHANNEL_LAYERS = layers
    yield prefix
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"*{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def default_model(transactional_db: None) -> Any:
    """The registry's default model (transactional tests flush the migration's seed)."""
    return default_model_row()


def engine_default_model() -> Any:
    """The default model as `real_engine` (tests/inference/conftest.py) hosts it: without
    versions. Where the migration's seeded version `v1` is still there (no transactional test
    has flushed it yet), a generation would start a second engine for it in the process."""
    from chat import catalog
    from inference.models import ModelVersion

    model = default_model_row()
    ModelVersion.objects.filter(model=model).delete()
    catalog.forget()
    return model


def default_model_row() -> Any:
    from inference.models import LanguageModel

    model, _ = LanguageModel.objects.get_or_create(
        name=MODEL,
        defaults={
            "display_name": "SmolLM2",
            "weights": "smollm2-135m-instruct",
            "context_length": 8192,
            "max_output_tokens": 2048,
            "queue": QUEUE,
            "is_default": True,
        },
    )
    return model


@dataclass
class Dispatched:
    tasks: list[dict[str, Any]] = field(default_factory=list)

    @property
    def generation_ids(self) -> list[str]:
        return [task["kwargs"]["generation_id"] for task in self.tasks]


@pytest.fixture
def dispatched(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dispatched]:
    """Records Celery hand-offs; removes the test's generations from the waiting sets."""
    record = Dispatched()

    def send_task(name: str, **options: Any) -> None:
        record.tasks.append({"name": name, **options})

    monkeypatch.setattr(admission.celery_app, "send_task", send_task)
    yield record
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    for task in record.tasks:
        client.zrem(f"chat:waiting:{task['queue']}", task["kwargs"]["generation_id"])
        client.zrem(f"chat:waiting-since:{task['queue']}", task["kwargs"]["generation_id"])
    client.close()


@pytest.fixture(scope="session")
def moderation_warm() -> None:
    """Load the moderation checks once, before the first consumer test, as the web server does
    before it listens (`config.server`): loading them takes seconds (more on a busy machine),
    which the first chat.send would otherwise spend inside its 10-second wait."""
    from moderation import pipeline

    pipeline.warm()


@pytest.fixture
def chat_env(
    isolated_redis: str, default_model: Any, dispatched: Dispatched, moderation_warm: None
) -> Dispatched:
    """Everything a consumer test needs; returns the record of dispatched tasks."""
    return dispatched


@pytest.fixture
def make_user(transactional_db: None) -> Callable[..., User]:
    def make(**extra: Any) -> User:
        return User.objects.create_user(
            email=f"user-{uuid.uuid4().hex[:10]}@example.org", password=PASSWORD, **extra
        )

    return make


def application() -> Any:
    return WebsocketAuthMiddleware(URLRouter(websocket_urlpatterns))


class Client:
    """A connected test client; every frame it receives is validated against the protocol."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        self.communicator = communicator

    async def send(self, frame: Any) -> None:
        await self.communicator.send_to(text_data=json.dumps(frame))

    async def send_raw(self, text: str | None = None, data: bytes | None = None) -> None:
        # send_input, not send_to: empty frames are frames too.
        event = {"type": "websocket.receive", "text": text} if data is None else None
        await self.communicator.send_input(event or {"type": "websocket.receive", "bytes": data})

    async def receive(self, timeout: float = 10) -> dict[str, Any]:
        raw = await self.communicator.receive_output(timeout)
        assert raw["type"] == "websocket.send", raw
        frame = json.loads(raw["text"])
        server_message_adapter.validate_python(frame)
        return dict(frame)

    async def receive_about(self, generation_id: str, timeout: float = 10) -> dict[str, Any]:
        """The next frame about `generation_id`. The user's other frames are skipped: a
        connection may hear a `conversation.updated` published just before it joined (the
        process's reader hands a message to the members a group has when it arrives)."""
        while True:
            frame = await self.receive(timeout)
            if frame.get("generation_id") == generation_id:
                return frame

    async def receive_until(self, kind: str, timeout: float = 10) -> list[dict[str, Any]]:
        frames = [await self.receive(timeout)]
        while frames[-1]["type"] != kind:
            frames.append(await self.receive(timeout))
        return frames

    async def assert_quiet_then_pong(self, quiet_for: float = 0.3) -> None:
        """Nothing arrives within `quiet_for` seconds, and then a ping is answered by a pong
        that is the very next frame: the quiet was not a consumer that had stopped (a stopped
        one is quiet too), and nothing was about to be sent just behind it."""
        if not await self.communicator.receive_nothing(quiet_for):
            unexpected = await self.communicator.receive_output(1)
            raise AssertionError(f"expected nothing within {quiet_for} s, got {unexpected}")
        await self.send({"type": "ping"})
        answer = await self.receive()
        assert answer == {"type": "pong"}, f"expected only a pong after the quiet, got {answer}"

    async def chat_send(self, content: str = "Hello there", **fields: Any) -> dict[str, Any]:
        frame = {
            "type": "chat.send",
            "request_id": fields.pop("request_id", uuid.uuid4().hex),
            "conversation_id": fields.pop("conversation_id", None),
            "content": content,
            **fields,
        }
        await self.send(frame)
        return await self.receive()

    async def settle(self) -> None:
        """Waits until the consumer has finished what it was handling (after `chat.accepted`
        it still tells the user's other connections): a consumer handles frames in order, so
        its `pong` comes after that."""
        await self.send({"type": "ping"})
        await self.receive_until("pong")

    async def close(self) -> None:
        await self.communicator.disconnect()


async def connect(user: User, *, expect_accept: bool = True) -> Client:
    raw_token, _ = await sync_to_async(token_issue)(user=user)
    communicator = WebsocketCommunicator(
        application(), "/ws/chat/", headers=[(b"authorization", f"Bearer {raw_token}".encode())]
    )
    connected, _ = await communicator.connect()
    assert connected
    return Client(communicator)


async def publish(generation_id: str, event: dict[str, Any]) -> None:
    """What a worker does: an event to the generation's group."""
    await get_channel_layer().group_send(names.group(generation_id), event)
