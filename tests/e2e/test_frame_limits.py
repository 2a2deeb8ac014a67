"""Frame limits on real Daphne and Redis with a real websocket client: a client that floods
pings past its per-user window is answered `rate_limited` with `retry_after`, then closed with
4429, while another user's connection keeps its round trip.

The stack is this module's own, with a per-user window small enough that any machine fills it:
the server counts frames as it handles them, and on the session's shared protocol stack
(3,000 a minute) CI's busy cores once handled the flood slower than 50 frames a second, so the
window never filled and no close came (stops 23 and 26)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
import websockets
from websockets.asyncio.client import connect

from tests.e2e.protocol_support import LIMITS, new_client, web_only
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

DATABASE = "chat_frame_limits"
REDIS_DB = 1  # tests/e2e/test_connect_rate.py's too: each module's stack is gone before the next
PER_USER = 300
CLOSE_AFTER = 50

# Seconds to wait for the next answer: generous, the CI machine has two busy cores.
RECV_WAIT = 60


@pytest.fixture(scope="module")
def flood_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with web_only(
        tmp_path_factory.mktemp("frame-limits"),
        database=DATABASE,
        redis_db=REDIS_DB,
        extra_env={
            **LIMITS,
            "CHAT_FRAMES_PER_MINUTE_PER_USER": str(PER_USER),
            "CHAT_FLOOD_CLOSE_AFTER_REFUSALS": str(CLOSE_AFTER),
        },
    ) as stack:
        yield stack


def test_a_ping_flood_is_refused_then_closed_while_others_are_answered(
    flood_stack: Stack,
) -> None:
    flooder, bystander = new_client(flood_stack), new_client(flood_stack)

    async def scenario() -> tuple[list[dict], int | None, dict]:
        headers = {"Authorization": f"Bearer {flooder.token}"}
        # max_queue=None: the client keeps reading (and answering the server's keepalive pings)
        # while it is still sending; with websockets' default of 16 queued messages it stops
        # reading, and a slow run of the flood could outlast the stack's 3 s ping timeout.
        async with connect(
            flood_stack.ws_url, additional_headers=headers, proxy=None, max_queue=None
        ) as ws:
            ping = json.dumps({"type": "ping"})
            started = time.monotonic()
            for _ in range(PER_USER + 2 * CLOSE_AFTER):
                await ws.send(ping)
            answers: list[dict] = []
            code = None
            try:
                while True:
                    answers.append(json.loads(await asyncio.wait_for(ws.recv(), RECV_WAIT)))
            except websockets.ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            except TimeoutError:
                # CI once waited here in vain (stop 23): say what had come, and what the server
                # logged, so the next such run shows where it stalled.
                tail = [a["type"] + ("/" + a["code"] if "code" in a else "") for a in answers[-3:]]
                raise AssertionError(
                    f"nothing for {RECV_WAIT} s after {len(answers)} answers (last: {tail}) "
                    f"in {time.monotonic() - started:.0f} s; "
                    f"web log:\n{flood_stack.log('web')[-3000:]}"
                ) from None
        async with bystander.connect() as session:
            await session.send_frame({"type": "ping"})
            other = await session.receive(timeout=10)
        return answers, code, other

    answers, code, other = asyncio.run(scenario())

    pongs = [a for a in answers if a["type"] == "pong"]
    refused = [a for a in answers if a["type"] == "error"]
    assert 0 < len(pongs) <= PER_USER
    assert all(a["code"] == "rate_limited" and a["retry_after"] >= 1 for a in refused)
    assert len(refused) == CLOSE_AFTER - 1  # the 50th refusal is the close
    assert code == 4429
    assert other == {"type": "pong"}
