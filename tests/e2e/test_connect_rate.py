"""Connection rates before authentication (chat.routing.ConnectRateMiddleware) on a real
Daphne serving the real application, with a real websocket client: a client reconnecting in a
loop with one credential is refused `rate_limited` with `retry_after` and closed with 4429,
while another user connects; failed handshakes from one address are bounded."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest

from chatclient.client import ChatClient
from tests.e2e.protocol_support import close_code, receive, send_and_receive, web_only
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

DATABASE = "chat_connect_rate"
REDIS_DB = 1
PER_CREDENTIAL = 4
FAILED_PER_ADDRESS = 3


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with web_only(
        tmp_path_factory.mktemp("connect-rate"),
        database=DATABASE,
        redis_db=REDIS_DB,
        extra_env={
            "CHAT_CONNECTS_PER_MINUTE_PER_CREDENTIAL": str(PER_CREDENTIAL),
            "CHAT_FAILED_CONNECTS_PER_MINUTE_PER_ADDRESS": str(FAILED_PER_ADDRESS),
        },
    ) as stack:
        yield stack


def signed_in(stack: Stack) -> ChatClient:
    client = ChatClient(stack.base_url)
    client.register(f"rate-{uuid.uuid4().hex[:12]}@example.com", "correct horse battery 42")
    client.login()
    return client


def test_a_credential_reconnecting_in_a_loop_is_refused_while_another_user_connects(
    stack: Stack,
) -> None:
    looping, other = signed_in(stack), signed_in(stack)

    async def scenario() -> tuple[list[str], dict, int | None, str]:
        answered = []
        for _ in range(PER_CREDENTIAL):
            async with looping.connect() as session:
                answered.append((await send_and_receive(session, {"type": "ping"}))["type"])
        refused = await looping.open()
        refusal = await receive(refused)
        code = await close_code(refused)
        async with other.connect() as session:
            served = (await send_and_receive(session, {"type": "ping"}))["type"]
        return answered, refusal, code, served

    answered, refusal, code, served = asyncio.run(scenario())
    assert answered == ["pong"] * PER_CREDENTIAL
    assert refusal["type"] == "error" and refusal["code"] == "rate_limited"
    assert 1 <= refusal["retry_after"] <= 60
    assert code == 4429
    assert served == "pong"


def test_failed_handshakes_from_one_address_are_bounded_before_authentication(
    stack: Stack,
) -> None:
    """Runs last in this module: it leaves the test's address refused for a minute."""
    valid = signed_in(stack)
    wrong = ChatClient(stack.base_url)
    wrong.token = "sk-" + uuid.uuid4().hex  # never issued

    async def scenario() -> tuple[list[int | None], dict, int | None]:
        failed = []
        for _ in range(FAILED_PER_ADDRESS):
            failed.append(await close_code(await wrong.open()))
        # The address has used up its failures: even a valid credential waits now.
        refused = await valid.open()
        return failed, await receive(refused), await close_code(refused)

    failed, refusal, code = asyncio.run(scenario())
    assert failed == [4401] * FAILED_PER_ADDRESS
    assert refusal["code"] == "rate_limited" and refusal["retry_after"] >= 1
    assert code == 4429
