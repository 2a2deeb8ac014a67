"""Frame limits on real Daphne and Redis with a real websocket client: a client that floods
pings past its per-user window is answered `rate_limited` with `retry_after`, then closed with
4429, while another user's connection keeps its round trip."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from websockets.asyncio.client import connect

from tests.e2e.protocol_support import LIMITS, new_client
from tests.support.stack import Stack

pytest_plugins = ["tests.e2e.protocol_support"]
pytestmark = pytest.mark.e2e

# Seconds to wait for the next answer: generous, the CI machine has two busy cores.
RECV_WAIT = 60


def test_a_ping_flood_is_refused_then_closed_while_others_are_answered(
    protocol_stack: Stack,
) -> None:
    per_user = int(LIMITS["CHAT_FRAMES_PER_MINUTE_PER_USER"])
    flooder, bystander = new_client(protocol_stack), new_client(protocol_stack)

    async def scenario() -> tuple[list[dict], int | None, dict]:
        headers = {"Authorization": f"Bearer {flooder.token}"}
        # max_queue=None: the client keeps reading (and answering the server's keepalive pings)
        # while it is still sending; with websockets' default of 16 queued messages it stops
        # reading, and a slow run of the flood could outlast the stack's 3 s ping timeout.
        async with connect(
            protocol_stack.ws_url, additional_headers=headers, proxy=None, max_queue=None
        ) as ws:
            ping = json.dumps({"type": "ping"})
            for _ in range(per_user + 200):
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
                    f"nothing for {RECV_WAIT} s after {len(answers)} answers (last: {tail}); "
                    f"web log:\n{protocol_stack.log('web')[-3000:]}"
                ) from None
        async with bystander.connect() as session:
            await session.send_frame({"type": "ping"})
            other = await session.receive(timeout=10)
        return answers, code, other

    answers, code, other = asyncio.run(scenario())

    pongs = [a for a in answers if a["type"] == "pong"]
    refused = [a for a in answers if a["type"] == "error"]
    assert 0 < len(pongs) <= per_user
    assert refused and all(a["code"] == "rate_limited" and a["retry_after"] >= 1 for a in refused)
    assert code == 4429
    assert other == {"type": "pong"}
