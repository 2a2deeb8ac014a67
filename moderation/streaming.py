"""Output moderation for streamed generations.

The worker feeds each delta in and publishes only what comes back. Text is held until a window
is complete (a sentence end, or `MODERATION_WINDOW_CHARS` characters), then the window is
checked together with the last `MODERATION_OVERLAP_CHARS` characters before it, so a phrase
split across two windows is still seen whole.

The first window is the exception: it closes at the first flush that holds at least
`MODERATION_FIRST_WINDOW_CHARS` characters (a token or two), so that the answer starts as soon
as the engine's first words are checked instead of a sentence later (time to first token is
what users notice most). A phrase that begins in that first window and ends in the next is
still caught by the overlap; what the user may have seen of it is its first word.

Checks that skip code know whether the window begins inside a fenced block. Personal data is
redacted in what is released; a block stops the stream for good.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

from django.conf import settings
from django.db import connections

from moderation import pipeline
from moderation.messages import blocked_message
from moderation.normalize import fence_open_after
from moderation.types import Action, Direction, Span, Verdict, redact

# A sentence ends at ".", "!" or "?" followed by whitespace, or at a newline.
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s|\n")
# A cut must not split what the PII check needs whole: a trailing run of digits and phone
# punctuation, or an unfinished e-mail address, is held for the next window.
_UNSAFE_TAIL = re.compile(r"(?:[\d+(][\d\s().\-]*|[\w.+-]+@[\w.-]*)$")
# How much already-released text is kept with an event, for the reviewer.
_EVENT_CONTEXT = 600


def _refuse_event_loop() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    # Django's ORM refuses to run on an event loop thread, and the rules would silently fall
    # back to "none loaded": fail loudly instead.
    raise RuntimeError("OutputModerator.feed/finish block; use afeed/afinish in async code")


def _closing_connections(func: Callable[..., str], *args: str) -> str:
    # Threads of the event loop's default pool live on; a database connection opened in one
    # (rules reload, event write: rare) is closed again rather than left idle there.
    try:
        return func(*args)
    finally:
        connections.close_all()


class OutputModerator:
    """One per generation; not thread-safe (one stream, one caller)."""

    def __init__(
        self,
        *,
        user_id: int | None,
        conversation_id: str | None,
        generation_id: str | None,
        window_chars: int | None = None,
        overlap_chars: int | None = None,
        first_window_chars: int | None = None,
    ) -> None:
        self.user_id = user_id
        self.conversation_id = conversation_id
        self.generation_id = generation_id
        self.window_chars = window_chars or settings.MODERATION_WINDOW_CHARS
        self.overlap_chars = (
            overlap_chars if overlap_chars is not None else settings.MODERATION_OVERLAP_CHARS
        )
        self.first_window_chars = (
            first_window_chars
            if first_window_chars is not None
            else settings.MODERATION_FIRST_WINDOW_CHARS
        )
        self.blocked = False
        self.categories: list[str] = []
        self.message = ""
        # `checked` is the text as checked so far (original, unredacted); `released` is what
        # callers received (redacted). `pending` waits for its window.
        self._checked = ""
        self._pending = ""
        self._released_parts: list[str] = []
        self._recorded: set[tuple[str, str, tuple[str, ...]]] = set()

    @property
    def flagged(self) -> bool:
        """Some check found something in the output (a flag, a redaction or a block)."""
        return bool(self._recorded) or self.blocked

    @property
    def released_text(self) -> str:
        """Everything released so far, as the user saw it."""
        return "".join(self._released_parts)

    def feed(self, delta: str) -> str:
        """Add generated text; return the text that is now safe to release (maybe "").

        Blocking and may touch the database: inside an event loop use `afeed`."""
        _refuse_event_loop()
        return self._drain() if self._hold(delta) else ""

    def _hold(self, delta: str) -> bool:
        """Add `delta` to the held text; False once the stream is blocked."""
        if self.blocked:
            return False
        self._pending += delta
        return True

    def _drain(self) -> str:
        out: list[str] = []
        while not self.blocked:
            cut = self._window_end()
            if cut is None:
                break
            out.append(self._check_window(cut))
        return "".join(out)

    def finish(self) -> str:
        """The generation ended: check and return whatever is still held."""
        _refuse_event_loop()
        if self.blocked or not self._pending:
            return ""
        return self._check_window(len(self._pending))

    async def afeed(self, delta: str) -> str:
        """`feed` for async code. Most deltas only extend the held text, which is done here;
        a complete window is checked off the event loop (CPU work that may touch the
        database). The worker calls this once per flush per stream, so the thread hop is
        saved for the flushes that need it."""
        if not self._hold(delta) or self._window_end() is None:
            return ""
        return await asyncio.to_thread(_closing_connections, self._drain)

    async def afinish(self) -> str:
        return await asyncio.to_thread(_closing_connections, self.finish)

    def _window_end(self) -> int | None:
        pending = self._pending
        if not self._checked and 0 < self.first_window_chars <= len(pending):
            # The early first window: all that is held, less a tail the PII check needs whole.
            tail = _UNSAFE_TAIL.search(pending)
            if tail is None:
                return len(pending)
            if tail.start() > 0:
                return tail.start()
        sentence = _SENTENCE_END.search(pending)
        if sentence is not None and sentence.end() <= self.window_chars:
            return sentence.end()
        if len(pending) < self.window_chars:
            return None
        # Long enough without a sentence end: cut at the last space, holding back a tail
        # that might be the start of a phone number, card number or address.
        cut = pending.rfind(" ", 0, self.window_chars) + 1 or self.window_chars
        tail = _UNSAFE_TAIL.search(pending[:cut].rstrip())
        if tail is not None and tail.start() > 0:
            cut = tail.start()
        return cut

    def _check_window(self, cut: int) -> str:
        window, self._pending = self._pending[:cut], self._pending[cut:]
        overlap = self._checked[-self.overlap_chars :] if self.overlap_chars else ""
        in_code = fence_open_after(self._checked[: len(self._checked) - len(overlap)])
        outcome = pipeline.run(
            overlap + window, direction=Direction.OUTPUT, code_open_at_start=in_code
        )
        self._checked += window
        # Spans index overlap + window; only the window part is still ours to change.
        shift = len(overlap)
        spans = [
            Span(max(s.start - shift, 0), s.end - shift, s.label)
            for s in outcome.spans
            if s.end > shift
        ]
        released = redact(window, spans)
        self._record(outcome.verdicts, released)
        if outcome.action is Action.BLOCK:
            self.blocked = True
            self.categories = list(outcome.categories)
            self.message = blocked_message(self.categories, direction=Direction.OUTPUT)
            self._pending = ""
            return ""
        self._released_parts.append(released)
        return released

    def _record(self, verdicts: tuple[Verdict, ...], window: str) -> None:
        fresh = []
        for verdict in verdicts:
            # The overlap is checked twice; one finding is one event.
            key = (verdict.check, verdict.matched or verdict.reason, verdict.categories)
            if key in self._recorded:
                continue
            self._recorded.add(key)
            fresh.append(verdict)
        if not fresh:
            return
        # Imported here: services imports the models, which the worker may not have loaded
        # when it creates its first moderator.
        from moderation.services import events_record

        events_record(
            verdicts=fresh,
            direction=Direction.OUTPUT,
            # What the user already saw (redacted) followed by the window that was caught.
            text=self.released_text[-_EVENT_CONTEXT:] + window,
            user_id=self.user_id,
            conversation_id=self.conversation_id,
            generation_id=self.generation_id,
        )
