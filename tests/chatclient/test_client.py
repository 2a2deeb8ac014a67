"""The reference client's pieces that need no chat server: backoff, rendering, the CLI's
arguments, and its recovery of a stalled stream (against a small websocket server here)."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from typing import Any

import pytest
import websockets

from chatclient.cli import Renderer, parse_args
from chatclient.client import ChatClient, ResilientChat, StreamEvent, backoff_delays


def test_backoff_grows_exponentially_up_to_the_cap_when_jitter_is_at_its_maximum() -> None:
    delays = backoff_delays(base=0.5, cap=8.0, rng=lambda: 1.0)

    assert list(itertools.islice(delays, 7)) == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_backoff_jitter_spreads_each_delay_between_zero_and_its_ceiling() -> None:
    samples = iter([0.0, 0.25, 0.999])
    delays = backoff_delays(base=1.0, cap=30.0, rng=lambda: next(samples))

    assert list(itertools.islice(delays, 3)) == [0.0, 0.5, 0.999 * 4]


def test_default_backoff_is_randomised() -> None:
    first = list(itertools.islice(backoff_delays(), 6))
    second = list(itertools.islice(backoff_delays(), 6))

    assert first != second
    assert all(0 <= delay <= 30 for delay in first)


def render(*events: StreamEvent) -> tuple[str, list[bool]]:
    out, err = io.StringIO(), io.StringIO()
    renderer = Renderer(out, err)
    ended = [renderer.event(event) for event in events]
    return out.getvalue(), ended


def test_the_renderer_prints_deltas_as_they_come_and_marks_a_stopped_answer() -> None:
    text, ended = render(
        StreamEvent("generation.delta", {"seq": 1, "text": "Hel"}),
        StreamEvent("generation.delta", {"seq": 2, "text": "lo"}),
        StreamEvent("generation.done", {"text": "Hello", "finish_reason": "stopped"}),
    )

    assert text == "Hello [stopped]\n"
    assert ended == [False, False, True]


def test_the_renderer_completes_text_it_missed_from_the_final_message() -> None:
    text, _ = render(
        StreamEvent("generation.delta", {"seq": 1, "text": "Hel"}),
        StreamEvent("generation.done", {"text": "Hello world", "finish_reason": "stop"}),
    )

    assert text == "Hello world\n"


def test_the_renderer_shows_refusals_with_their_retry_time() -> None:
    text, ended = render(
        StreamEvent("error", {"code": "rate_limited", "message": "Slow down.", "retry_after": 12}),
    )

    assert text == "[rate_limited] Slow down. (retry in 12 s)\n"
    assert ended == [False]


def test_the_cli_reads_its_options_and_the_one_shot_prompt() -> None:
    args = parse_args(["--url", "http://h:1", "--max-tokens", "16", "Say", "hi"])

    assert (args.url, args.max_tokens, args.prompt) == ("http://h:1", 16, ["Say", "hi"])


class LossyServer:
    """A websocket server that loses frames as a broken delivery path would: it accepts a
    chat.send, streams delta 1, then sends nothing more (or, with `progress_at`, only a
    progress saying it is at that seq) until the client subscribes, and then resumes."""

    def __init__(self, *, progress_at: int | None = None) -> None:
        self.progress_at = progress_at
        self.subscribes: list[dict] = []
        self.connections = 0

    async def handle(self, connection: Any) -> None:
        self.connections += 1
        async for raw in connection:
            frame = json.loads(raw)
            if frame["type"] == "chat.send":
                await connection.send(json.dumps(accepted_frame(frame["request_id"])))
                await connection.send(json.dumps(delta_frame(1, "Once")))
                if self.progress_at is not None:
                    progress = {"type": "generation.progress", "generation_id": "g1"}
                    await connection.send(json.dumps({**progress, "seq": self.progress_at}))
            elif frame["type"] == "generation.subscribe":
                self.subscribes.append(frame)
                await connection.send(json.dumps(delta_frame(3, " upon a")))
                await connection.send(json.dumps(done_frame("Once upon a")))


def accepted_frame(request_id: str) -> dict[str, Any]:
    return {
        "type": "chat.accepted",
        "request_id": request_id,
        "conversation_id": "c1",
        "user_message": {"id": "u1", "parent_id": None, "content": "hi", "created_at": "now"},
        "generation_id": "g1",
        "assistant_message_id": "a1",
    }


def delta_frame(seq: int, text: str) -> dict[str, Any]:
    return {"type": "generation.delta", "generation_id": "g1", "seq": seq, "text": text}


def done_frame(text: str) -> dict[str, Any]:
    usage = {"prompt_tokens": 1, "completion_tokens": 3}
    return {"type": "generation.done", "generation_id": "g1", "finish_reason": "stop",
            "text": text, "usage": usage}  # fmt: skip


async def ask_through(server: LossyServer, *, stall_timeout: float) -> list[StreamEvent]:
    async with websockets.serve(server.handle, "127.0.0.1", 0) as listening:
        port = listening.sockets[0].getsockname()[1]
        chat = ResilientChat(
            ChatClient(f"http://127.0.0.1:{port}", token="t"), stall_timeout=stall_timeout
        )
        events = [event async for event in chat.ask("hi")]
        await chat.close()
    return events


@pytest.mark.parametrize("progress_at", [None, 3])
async def test_the_resilient_client_resubscribes_a_stalled_stream_on_the_same_connection(
    progress_at: int | None,
) -> None:
    # None: the stream falls silent (found by the stall timeout); 3: a progress is ahead of
    # the last delta (found at once, so the stall timeout is set far away).
    server = LossyServer(progress_at=progress_at)
    timeout = 0.3 if progress_at is None else 60.0

    events = await asyncio.wait_for(ask_through(server, stall_timeout=timeout), 10)

    kinds = [event.kind for event in events]
    assert kinds == [
        "chat.accepted",
        "generation.delta",
        "resubscribing",
        "generation.delta",
        "generation.done",
    ]
    assert server.subscribes == [
        {"type": "generation.subscribe", "generation_id": "g1", "after_seq": 1}
    ]
    assert server.connections == 1
    assert "".join(e.text for e in events if e.kind == "generation.delta") == "Once upon a"
