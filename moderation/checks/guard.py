"""A guard model (Llama Guard, ShieldGemma, ...) behind an OpenAI-compatible chat-completions
endpoint, e.g. `python -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-Guard-3-1B`
on a GPU host. Optional: disabled unless `MODERATION_GUARD_URL` is set and the check is enabled.

Two ways to ask:

- a guard model whose chat template carries its policy (Llama Guard) gets the text as the last
  turn, with nothing around it (`MODERATION_GUARD_PROMPT_FILE` empty);
- a general instruct model gets a classification prompt (`MODERATION_GUARD_PROMPT_FILE`: a
  JSON list of chat messages, one of which holds `{message}`; `moderation/data/guard_prompt.json`
  is written for the served SmolLM2 and shows the path end to end without guard weights).

The score is the probability the model gives to "unsafe" against "safe" as its first word
(`logprobs`, as Llama Guard's authors score it), compared with the check's threshold (0.5 by
default, settable in the admin's check settings). An endpoint that returns no log
probabilities is read from its text alone: "safe", or "unsafe" and a line of hazard codes
("S1,S10"), which also give the categories.

A timeout, an HTTP error or an unreadable reply is a `CheckError`, handled by the check's
failure policy (`MODERATION_GUARD_FAILURE_POLICY`, and `MODERATION_FAIL_CLOSED_CATEGORIES` for
texts an earlier check flagged). After `MODERATION_GUARD_BREAKER_FAILURES` failures in a row
the circuit opens: for `MODERATION_GUARD_BREAKER_RESET_SECONDS` calls fail at once instead of
waiting for a timeout each, then one trial call decides whether it closes again.
"""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import httpx
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

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
# Where the text goes in a classification prompt.
PLACEHOLDER = "{message}"
ROLES = frozenset({"system", "user", "assistant"})
# How many alternatives for the first word are asked for (OpenAI's maximum, vLLM's default).
TOP_LOGPROBS = 20


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


def unsafe_probability(logprobs: Any) -> float | None:
    """P("unsafe") / (P("safe") + P("unsafe")) for the reply's first word, from an OpenAI
    `choices[0].logprobs`; None when the reply has none or neither word is among the first
    word's alternatives. A token may be the whole word or its start ("uns", "saf"), and blank
    tokens before the word (Llama Guard 3 writes two newlines first) are skipped."""
    if not isinstance(logprobs, dict) or not isinstance(logprobs.get("content"), list):
        return None
    first = next(
        (t for t in logprobs["content"] if isinstance(t, dict) and str(t.get("token", "")).strip()),
        None,
    )
    if first is None:
        return None
    safe = unsafe = 0.0
    for alternative in first.get("top_logprobs") or [first]:
        word = str(alternative.get("token", "")).strip().lower()
        probability = math.exp(float(alternative.get("logprob", -math.inf)))
        if word.startswith("u") and "unsafe".startswith(word):
            unsafe += probability
        elif word and "safe".startswith(word):
            safe += probability
    if safe + unsafe <= 0.0:
        return None
    return unsafe / (safe + unsafe)


def load_prompt(path: str) -> list[dict[str, str]]:
    """The classification prompt in `path`: a JSON list of {"role", "content"} messages whose
    last one is the user turn holding `{message}` (once, and in no other message)."""
    try:
        messages = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImproperlyConfigured(f"MODERATION_GUARD_PROMPT_FILE {path}: {exc}") from exc
    if not (
        isinstance(messages, list)
        and messages
        and all(
            isinstance(m, dict)
            and set(m) == {"role", "content"}
            and m["role"] in ROLES
            and isinstance(m["content"], str)
            for m in messages
        )
    ):
        raise ImproperlyConfigured(
            f"MODERATION_GUARD_PROMPT_FILE {path}: expected a JSON list of "
            '{"role": "system"|"user"|"assistant", "content": "..."} messages'
        )
    holders = [m for m in messages if PLACEHOLDER in m["content"]]
    last = messages[-1]
    if holders != [last] or last["role"] != "user" or last["content"].count(PLACEHOLDER) != 1:
        raise ImproperlyConfigured(
            f"MODERATION_GUARD_PROMPT_FILE {path}: the last message must be a user turn "
            f"holding {PLACEHOLDER} once, and no other message may hold it"
        )
    return messages


class GuardModelCheck(Check):
    name: ClassVar[str] = "guard"
    skips_code: ClassVar[bool] = False
    default_threshold: ClassVar[float | None] = 0.5

    def __init__(self, *, threshold: float | None = None) -> None:
        super().__init__(threshold=threshold)
        self.url = settings.MODERATION_GUARD_URL.rstrip("/")
        self.model = settings.MODERATION_GUARD_MODEL
        self.timeout = settings.MODERATION_GUARD_TIMEOUT_SECONDS
        self.logprobs = settings.MODERATION_GUARD_LOGPROBS
        prompt_file = settings.MODERATION_GUARD_PROMPT_FILE
        self.prompt = load_prompt(str(prompt_file)) if prompt_file else None
        self.breaker = CircuitBreaker(
            failures=settings.MODERATION_GUARD_BREAKER_FAILURES,
            reset_seconds=settings.MODERATION_GUARD_BREAKER_RESET_SECONDS,
        )
        headers = {}
        if settings.MODERATION_GUARD_API_KEY:
            headers["Authorization"] = f"Bearer {settings.MODERATION_GUARD_API_KEY}"
        self._client = httpx.Client(timeout=self.timeout, headers=headers)

    def messages(self, text: str, direction: Direction) -> list[dict[str, str]]:
        """The conversation the guard judges."""
        if self.prompt is not None:
            # str.replace, not str.format: braces in the text stay as they are.
            return [{**m, "content": m["content"].replace(PLACEHOLDER, text)} for m in self.prompt]
        if direction is Direction.INPUT:
            return [{"role": "user", "content": text}]
        # Llama Guard judges the last turn; the assistant turn needs a user turn before it.
        return [
            {"role": "user", "content": "(conversation)"},
            {"role": "assistant", "content": text},
        ]

    def evaluate(self, text: str, *, direction: Direction) -> Verdict:
        if not self.url:
            raise CheckError("the guard check is enabled but MODERATION_GUARD_URL is empty")
        if not self.breaker.allow_request():
            raise CheckError("guard model circuit is open after repeated failures")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages(text, direction),
            "max_tokens": 20,
            "temperature": 0,
        }
        if self.logprobs:
            body |= {"logprobs": True, "top_logprobs": TOP_LOGPROBS}
        try:
            response = self._client.post(f"{self.url}/chat/completions", json=body)
            response.raise_for_status()
            choice = response.json()["choices"][0]
            score = unsafe_probability(choice.get("logprobs"))
            content = choice["message"]["content"] or ""
            try:
                said_unsafe, codes = parse_guard_reply(content)
            except ValueError:
                if score is None:
                    raise
                codes = []  # the score decides alone
            else:
                if score is None:
                    score = 1.0 if said_unsafe else 0.0
        except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
            self.breaker.record_failure()
            raise CheckError(f"guard model failed: {type(exc).__name__}: {exc}") from exc
        self.breaker.record_success()
        threshold = self.threshold if self.threshold is not None else 0.5
        if score < threshold:
            return ALLOW
        categories = tuple(dict.fromkeys(HAZARDS.get(code, code.lower()) for code in codes))
        return Verdict(
            Action.BLOCK,
            categories=categories or ("unsafe",),
            score=score,
            reason=f"guard model: P(unsafe) {score:.2f}" + (" " + ",".join(codes) if codes else ""),
        )
