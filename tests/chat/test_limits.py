"""Per-user limits on real Redis: rate, daily quota, concurrent generations, open connections."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from django.conf import settings as django_settings
from pytest_django import Settings

from chat import limits
from chat.errors import ChatError
from chat.generation import slots


@pytest.fixture(autouse=True)
def own_keys(settings: Settings) -> Iterator[str]:
    """A key prefix of this test's own on the shared Redis, deleted afterwards."""
    prefix = f"chat-test-limits-{uuid.uuid4().hex}"
    caches = {name: dict(config) for name, config in django_settings.CACHES.items()}
    caches["default"]["KEY_PREFIX"] = prefix
    settings.CACHES = caches
    yield prefix
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"*{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


def in_parallel(count: int, call: Callable[[], Any]) -> list[Any]:
    """Run `call` from `count` threads released together; return results or exceptions."""
    barrier = threading.Barrier(count)

    def run() -> Any:
        barrier.wait()
        try:
            return call()
        except ChatError as error:
            return error

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: run(), range(count)))


def test_messages_past_the_per_minute_limit_are_rate_limited_with_retry_after(
    settings: Settings,
) -> None:
    settings.CHAT_RATE_PER_MINUTE = 3
    for _ in range(3):
        limits.message_rate_hit(owner_id=1)

    with pytest.raises(ChatError) as refused:
        limits.message_rate_hit(owner_id=1)

    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after is not None and 1 <= refused.value.retry_after <= 60
    limits.message_rate_hit(owner_id=2)  # another user has their own budget


def test_the_gate_says_whether_a_message_fits_without_counting_it(settings: Settings) -> None:
    settings.CHAT_RATE_PER_MINUTE = 2
    settings.CHAT_DAILY_MESSAGE_QUOTA = 100
    for _ in range(10):
        assert limits.message_rate_allows(owner_id=11)  # asking uses nothing up
    limits.message_rate_hit(owner_id=11)
    limits.message_rate_hit(owner_id=11)

    assert not limits.message_rate_allows(owner_id=11)
    assert limits.message_rate_allows(owner_id=12)

    settings.CHAT_RATE_PER_MINUTE = 100
    settings.CHAT_DAILY_MESSAGE_QUOTA = 2
    limits.message_rate_hit(owner_id=13)
    assert limits.message_rate_allows(owner_id=13)
    limits.message_rate_hit(owner_id=13)
    assert not limits.message_rate_allows(owner_id=13)  # the day's quota is used up


def test_parallel_clients_of_one_user_share_one_rate_budget(settings: Settings) -> None:
    settings.CHAT_RATE_PER_MINUTE = 5

    results = in_parallel(12, lambda: limits.message_rate_hit(owner_id=7))

    refused = [r for r in results if isinstance(r, ChatError)]
    assert len(results) - len(refused) == 5
    assert {r.code for r in refused} == {"rate_limited"}


def test_the_daily_quota_refuses_with_quota_exceeded_and_reports_what_is_left(
    settings: Settings,
) -> None:
    settings.CHAT_RATE_PER_MINUTE = 100
    settings.CHAT_DAILY_MESSAGE_QUOTA = 2
    assert limits.quota_left(owner_id=3) == 2
    limits.message_rate_hit(owner_id=3)
    limits.message_rate_hit(owner_id=3)
    assert limits.quota_left(owner_id=3) == 0

    with pytest.raises(ChatError) as refused:
        limits.message_rate_hit(owner_id=3)

    assert refused.value.code == "quota_exceeded"
    assert refused.value.retry_after is not None and 86000 < refused.value.retry_after <= 86400


def test_a_message_refused_by_the_minute_limit_does_not_use_up_the_quota(
    settings: Settings,
) -> None:
    settings.CHAT_RATE_PER_MINUTE = 1
    settings.CHAT_DAILY_MESSAGE_QUOTA = 5
    limits.message_rate_hit(owner_id=4)
    for _ in range(3):
        with pytest.raises(ChatError):
            limits.message_rate_hit(owner_id=4)

    assert limits.quota_left(owner_id=4) == 4


def test_zero_turns_the_rate_limit_and_the_quota_off(settings: Settings) -> None:
    settings.CHAT_RATE_PER_MINUTE = 0
    settings.CHAT_DAILY_MESSAGE_QUOTA = 0
    for _ in range(50):
        limits.message_rate_hit(owner_id=5)
    assert limits.quota_left(owner_id=5) is None


def running(_generation_id: str) -> bool:
    return True


def test_a_user_gets_at_most_the_configured_concurrent_generations(settings: Settings) -> None:
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 3
    for number in range(3):
        token = slots.reserve(owner_id=1, is_running=running)
        slots.confirm(owner_id=1, token=token, generation_id=f"g{number}")

    with pytest.raises(ChatError) as refused:
        slots.reserve(owner_id=1, is_running=running)

    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after == slots.RETRY_AFTER_SECONDS
    assert sorted(slots.held(owner_id=1)) == ["g0", "g1", "g2"]


def test_a_released_generation_frees_its_slot(settings: Settings) -> None:
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 1
    token = slots.reserve(owner_id=1, is_running=running)
    slots.confirm(owner_id=1, token=token, generation_id="g1")

    slots.release(owner_id=1, generation_id="g1")

    assert slots.reserve(owner_id=1, is_running=running).startswith("pending:")


def test_generations_that_ended_without_releasing_are_reconciled_from_the_store(
    settings: Settings,
) -> None:
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 2
    for generation_id in ("ended", "streaming"):
        token = slots.reserve(owner_id=1, is_running=running)
        slots.confirm(owner_id=1, token=token, generation_id=generation_id)
    asked: list[str] = []

    def store_says(generation_id: str) -> bool:
        asked.append(generation_id)
        return generation_id == "streaming"

    token = slots.reserve(owner_id=1, is_running=store_says)

    assert sorted(asked) == ["ended", "streaming"]
    assert sorted(slots.held(owner_id=1)) == sorted([token, "streaming"])


def test_parallel_reservations_never_exceed_the_limit(settings: Settings) -> None:
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 3

    results = in_parallel(10, lambda: slots.reserve(owner_id=9, is_running=running))

    granted = [r for r in results if isinstance(r, str)]
    assert len(granted) == 3
    assert all(
        isinstance(r, ChatError) and r.code == "rate_limited" for r in results if r not in granted
    )


def test_a_slot_left_by_a_dead_process_expires(settings: Settings) -> None:
    settings.CHAT_MAX_CONCURRENT_GENERATIONS = 1
    key = limits.key("generations", 1)
    assert limits.slot_acquire(key, member="lost", limit=1, lifetime=0.3)
    assert not limits.slot_acquire(key, member="next", limit=1, lifetime=10)

    time.sleep(0.4)

    assert limits.slot_acquire(key, member="next", limit=1, lifetime=10)


def test_the_connection_past_the_per_user_limit_is_refused(settings: Settings) -> None:
    settings.CHAT_MAX_CONNECTIONS_PER_USER = 10
    opened = [
        limits.connection_register(owner_id=1, channel_name=f"channel-{n}") for n in range(10)
    ]

    assert opened == [True] * 10
    assert not limits.connection_register(owner_id=1, channel_name="channel-10")
    # Open connections renew their entry even at the limit; another user is unaffected.
    assert limits.connection_register(owner_id=1, channel_name="channel-3")
    assert limits.connection_register(owner_id=2, channel_name="channel-10")


def test_closing_a_connection_makes_room_for_another(settings: Settings) -> None:
    settings.CHAT_MAX_CONNECTIONS_PER_USER = 1
    assert limits.connection_register(owner_id=1, channel_name="a")
    assert not limits.connection_register(owner_id=1, channel_name="b")

    limits.connection_unregister(owner_id=1, channel_name="a")

    assert limits.connection_register(owner_id=1, channel_name="b")


# --- handshakes per credential and failed handshakes per address (before authentication) -------


def test_a_credential_reconnecting_in_a_loop_is_refused_with_retry_after(
    settings: Settings,
) -> None:
    settings.CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL = 3
    credential, other = f"bearer:{uuid.uuid4().hex}", f"bearer:{uuid.uuid4().hex}"
    admitted = [
        limits.connect_refused(credential=credential, address="198.51.100.7") for _ in range(3)
    ]
    assert admitted == [None, None, None]
    wait = limits.connect_refused(credential=credential, address="198.51.100.7")
    assert wait is not None and 1 <= wait <= 60
    # Another credential from the same address is not limited by the first one's loop.
    assert limits.connect_refused(credential=other, address="198.51.100.7") is None


def test_only_failed_handshakes_count_against_an_address(settings: Settings) -> None:
    settings.CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL = 0
    settings.CHAT_FAILED_CONNECTS_PER_MINUTE_PER_ADDRESS = 2
    address = f"203.0.113.{uuid.uuid4().int % 250}-{uuid.uuid4().hex}"
    for _ in range(10):  # users sharing an address (NAT) who authenticate are never counted
        assert (
            limits.connect_refused(credential=f"bearer:{uuid.uuid4().hex}", address=address) is None
        )
    limits.connect_failed(address=address)
    assert limits.connect_refused(credential=None, address=address) is None
    limits.connect_failed(address=address)
    wait = limits.connect_refused(credential=f"bearer:{uuid.uuid4().hex}", address=address)
    assert wait is not None and wait >= 1
    assert limits.connect_refused(credential=None, address=f"{address}-elsewhere") is None


def test_zero_turns_the_connection_rates_off(settings: Settings) -> None:
    settings.CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL = 0
    settings.CHAT_FAILED_CONNECTS_PER_MINUTE_PER_ADDRESS = 0
    address = f"addr-{uuid.uuid4().hex}"
    for _ in range(200):
        limits.connect_failed(address=address)
        assert limits.connect_refused(credential="bearer:same", address=address) is None
