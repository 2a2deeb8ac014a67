"""A command-line chat on the reference client: `python -m chatclient`.

    CHAT_URL=http://127.0.0.1:8000 python -m chatclient             # interactive
    python -m chatclient --max-tokens 64 "Name three colours"       # one question, then exit

Credentials: CHAT_TOKEN (a bearer token), or CHAT_EMAIL and CHAT_PASSWORD, or prompts. Answers
stream as they are generated. Ctrl-C while an answer streams stops it (the text so far is
kept); Ctrl-C again, or at the prompt, quits. A dropped connection is retried with backoff and
the answer resumes where it left off.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import signal
import sys
import threading
from typing import TextIO

import websockets

from chatclient.client import ApiRequestError, ChatClient, ResilientChat, StreamEvent

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_AUTH = 3
EXIT_INTERRUPTED = 130


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m chatclient", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--url", default=os.environ.get("CHAT_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--email", default=os.environ.get("CHAT_EMAIL"))
    parser.add_argument("--model", default=None, help="model name (default: the server's)")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--system", default=None, help="system prompt of a new conversation")
    parser.add_argument("--conversation", default=None, help="continue this conversation id")
    parser.add_argument("prompt", nargs="*", help="ask this once and exit")
    return parser.parse_args(argv)


def login(args: argparse.Namespace) -> ChatClient:
    client = ChatClient(args.url, token=os.environ.get("CHAT_TOKEN") or None)
    if client.token:
        return client
    email = args.email or input("Email: ")
    password = os.environ.get("CHAT_PASSWORD") or getpass.getpass("Password: ")
    client.login(email, password)
    return client


class Renderer:
    """Prints one answer as it streams, reconciled with the final text."""

    def __init__(self, out: TextIO, err: TextIO) -> None:
        self.out, self.err = out, err
        self.shown = ""

    def event(self, event: StreamEvent) -> bool:
        """Show `event`; True when the answer ended normally (done, even stopped)."""
        frame = event.frame
        if event.kind == "generation.delta":
            self.write(event.text)
        elif event.kind == "generation.done":
            final = event.text
            # A client that missed text (a resume without a checkpoint) catches up here.
            if final.startswith(self.shown):
                self.write(final[len(self.shown) :])
            else:
                self.write("\n" + final)
            reason = frame.get("finish_reason")
            note = {"stopped": " [stopped]", "length": " [cut off]", "moderated": " [moderated]"}
            self.out.write(note.get(str(reason), "") + "\n")
            return True
        elif event.kind == "generation.error":
            self.out.write(f"\n[{frame.get('code')}: {frame.get('message')}]\n")
        elif event.kind == "moderation.blocked":
            self.out.write(f"[blocked] {frame.get('message')}\n")
        elif event.kind == "error":
            retry = frame.get("retry_after")
            suffix = f" (retry in {retry} s)" if retry else ""
            self.out.write(f"[{frame.get('code')}] {frame.get('message')}{suffix}\n")
        elif event.kind == "reconnecting":
            self.err.write(f"\n[connection lost; reconnecting in {event.delay:.1f} s]\n")
        self.out.flush()
        return False

    def write(self, text: str) -> None:
        self.shown += text
        self.out.write(text)
        self.out.flush()


async def ask(chat: ResilientChat, prompt: str, *, out: TextIO, err: TextIO) -> int:
    """Stream one answer; Ctrl-C stops it (twice: gives up)."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    interrupts = 0
    stopping: set[asyncio.Task[bool]] = set()

    def on_interrupt() -> None:
        nonlocal interrupts
        interrupts += 1
        if interrupts == 1 and chat.generation_id is not None:
            err.write("\n[stopping…]\n")
            stopping.add(loop.create_task(chat.stop()))
        elif task is not None:
            task.cancel()

    renderer = Renderer(out, err)
    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        async for event in chat.ask(prompt):
            if renderer.event(event):
                return EXIT_OK
        return EXIT_REFUSED
    except asyncio.CancelledError:
        return EXIT_INTERRUPTED
    finally:
        loop.remove_signal_handler(signal.SIGINT)


def _stdin_lines(loop: asyncio.AbstractEventLoop) -> asyncio.Queue[str | None]:
    # A daemon thread, so that quitting never waits for a blocked read of the terminal.
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, daemon=True).start()
    return lines


async def run(args: argparse.Namespace, client: ChatClient) -> int:
    options = {
        key: value
        for key, value in {
            "max_tokens": args.max_tokens,
            "temperature": args.temperature,
            "system_prompt": args.system,
        }.items()
        if value is not None
    }
    chat = ResilientChat(
        client, conversation_id=args.conversation, model=args.model, options=options or None
    )
    try:
        if args.prompt:
            return await ask(chat, " ".join(args.prompt), out=sys.stdout, err=sys.stderr)
        lines = _stdin_lines(asyncio.get_running_loop())
        while True:
            sys.stdout.write("you> ")
            sys.stdout.flush()
            line = await lines.get()
            if line is None or line.strip() == "/quit":
                return EXIT_OK
            if (
                line.strip()
                and await ask(chat, line, out=sys.stdout, err=sys.stderr) == EXIT_INTERRUPTED
            ):
                return EXIT_INTERRUPTED
    finally:
        await chat.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    try:
        client = login(args)
        code = asyncio.run(run(args, client))
    except ApiRequestError as error:
        print(f"login failed: {error}", file=sys.stderr)
        code = EXIT_AUTH
    except websockets.ConnectionClosed as error:
        print(f"connection refused by the server: {error}", file=sys.stderr)
        code = EXIT_AUTH
    except (KeyboardInterrupt, EOFError):
        code = EXIT_INTERRUPTED
    sys.exit(code)
