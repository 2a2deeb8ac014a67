"""A guard model (Llama Guard, ShieldGemma, ...) behind an OpenAI-compatible chat-completions
endpoint, e.g. `python -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-Guard-3-1B`
on a GPU host. Optional: disabled unless `MODERATION_GUARD_URL` is set and the check is enabled.

The reply is read in Llama Guard's format: "safe", or "unsafe" and a line of hazard codes
("S1,S10"). A timeout, an HTTP error or an unreadable reply is a `CheckError`, handled by the
check's failure policy (`MODERATION_GUARD_FAILURE_POLICY`). After
`MODERATION_GUARD_BREAKER_FAILURES` failures in a row the circuit opens: for
`MODERATION_GUARD_BREAKER_RESET_SECONDS` calls fail at once instead of waiting for a timeout
each, then one trial call decides whether it closes again.
"""

from __future__ import annotations

import threading
import time
from typing import ClassVar

import httpx
from django.conf import settings

from moderation.checks import Check, CheckError
from moderation.types import ALLOW, Action, Direction, Verdict

# Llama Guard 3 hazard categories (MLCommons taxonomy) mapped onto ours (moderation/policy.py);
# those the policy has no category for keep a name of their own.
HAZARDS = {
    "S1": "violence",
    "S2": "illicit",
    "S3": "sexual",
    "S4": "sexual/minors",
    "S5": "defamation",
    "S6": "specialized_advice",
    "S7": "privacy",
    "S8": "intellectual_property",
    "S9": "illicit/violent",
    "S10": "hate",
    "S11": "self-harm",
    "S12": "sexual",
    "S13": "elections",
    "S14": "illicit",
}


class CircuitBreaker:
    """Counts consecutive failures; open means "do not even try" until `reset_seconds` pass."""

    def __init__(self, *, failures: int, reset_seconds: float) -> None:
        self.max_failures = failures
        self.reset_seconds = reset_seconds
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    def allow_request(self) -> bool:
        with self._lock:
            if self._opened_at is None:
                return True
            if time.monotonic() - self._opened_at >= self.reset_seconds:
                # Half-open: let this call through; its result closes or re-opens the circuit.
                self._opened_at = time.monotonic()
                return True
            return False

    def record_success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None

    def record_failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.max_failures:
                self._opened_at = time.monotonic()

    @property
    def is_open(self) -> bool:
        return self._opened_at is not None


def parse_guard_reply(content: str) -> tuple[bool, list[str]]:
    """(unsafe, hazard codes) from a Llama Guard reply; raises ValueError when unreadable."""
    lines = [line.strip() for line in content.strip().splitlines() if line.strip()]
    if not lines:
        raise ValueError("empty reply")
    verdict = lines[0].lower()
    if verdict == "safe":
        return False, []
    if verdict == "unsafe":
        codes = [c.strip().upper() for c in lines[1].split(",")] if len(lines) > 1 else []
        return True, [c for c in codes if c]
    raise ValueError(f"unexpected reply {lines[0][:40]!r}")


class GuardModelCheck(Check):
    name: ClassVar[str] = "guard"
    skips_code: ClassVar[bool] = False

    def __init__(self, *, threshold: float | None = None) -> None:
        super().__init__(threshold=threshold)
        self.url = settings.MODERATION_GUARD_URL.rstrip("/")
        self.model = settings.MODERATION_GUARD_MODEL
        self.timeout = settings.MODERATION_GUARD_TIMEOUT_SECONDS
        self.breaker = CircuitBreaker(
            failures=settings.MODERATION_GUARD_BREAKER_FAILURES,
            reset_seconds=settings.MODERATION_GUARD_BREAKER_RESET_SECONDS,
        )
        headers = {}
        if settings.MODERATION_GUARD_API_KEY:
            headers["Authorization"] = f"Bearer {settings.MODERATION_GUARD_API_KEY}"
        self._client = httpx.Client(timeout=self.timeout, headers=headers)

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        if not self.url:
            raise CheckError("the guard check is enabled but MODERATION_GUARD_URL is empty")
        if not self.breaker.allow_request():
            raise CheckError("guard model circuit is open after repeated failures")
        if direction is Direction.INPUT:
            messages = [{"role": "user", "content": text}]
        else:
            # Llama Guard judges the last turn; the assistant turn needs a user turn before it.
            messages = [
                {"role": "user", "content": "(conversation)"},
                {"role": "assistant", "content": text},
            ]
        try:
            response = self._client.post(
                f"{self.url}/chat/completions",
                json={
                    "model": self.model,
                    "messages": messages,
                    "max_tokens": 20,
                    "temperature": 0,
                },
            )
            response.raise_for_status()
            content = response.json()["choices"][0]["message"]["content"]
            unsafe, codes = parse_guard_reply(content)
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            self.breaker.record_failure()
            raise CheckError(f"guard model failed: {type(exc).__name__}: {exc}") from exc
        self.breaker.record_success()
        if not unsafe:
            return ALLOW
        categories = tuple(dict.fromkeys(HAZARDS.get(code, code.lower()) for code in codes))
        return Verdict(
            Action.BLOCK,
            categories=categories or ("unsafe",),
            score=1.0,
            reason="guard model: unsafe " + ",".join(codes),
        )
