"""`prompt_fit` drops the oldest turns in time linear in the conversation, and keeps exactly
the turns that dropping them one by one, re-rendering each time, kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.prepare import GenerationRefused, prompt_fit, prompt_token_ids

TOO_LONG = "The message is too long for this model's context."


@pytest.fixture(scope="module")
def tokenizer(prepared_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(prepared_model_dir))


def reference_fit(
    tokenizer: Any, messages: list[dict[str, str]], *, context_length: int, min_output: int
) -> list[int]:
    """The straightforward algorithm: render everything, drop the oldest turn, render again."""
    messages = list(messages)
    while True:
        ids = prompt_token_ids(tokenizer, messages)
        if len(ids) + min_output <= context_length:
            return ids
        first = 1 if messages and messages[0]["role"] == "system" else 0
        if len(messages) - first <= 1:
            raise GenerationRefused(TOO_LONG)
        del messages[first]


def outcome(fit: Any, tokenizer: Any, messages: list[dict[str, str]], **limits: int) -> Any:
    try:
        return fit(tokenizer, messages, **limits)
    except GenerationRefused as refused:
        return ("refused", str(refused))


def conversation(system: str | None, contents: list[str]) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    for i, content in enumerate(contents):
        messages.append({"role": "user" if i % 2 == 0 else "assistant", "content": content})
    return messages


class Counting:
    """A tokenizer that counts its work: renders of the chat template (and of how many
    messages), and texts encoded."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.render_sizes: list[int] = []
        self.encoded_chars = 0

    def apply_chat_template(self, messages: list[dict[str, str]], **options: Any) -> Any:
        self.render_sizes.append(len(messages))
        return self.tokenizer.apply_chat_template(messages, **options)

    def encode(self, text: str, **options: Any) -> list[int]:
        self.encoded_chars += len(text)
        return list(self.tokenizer.encode(text, **options))


WORDS = st.sampled_from(["hello", "the", "model", "answer", "é", "2+2", "\n", "  ", "über", "🙂"])
CONTENT = st.lists(WORDS, min_size=1, max_size=40).map(" ".join).filter(str.strip)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    system=st.one_of(st.none(), CONTENT),
    contents=st.lists(CONTENT, min_size=1, max_size=24),
    context_length=st.integers(min_value=40, max_value=900),
    min_output=st.integers(min_value=1, max_value=64),
)
def test_the_same_turns_are_kept_as_by_dropping_them_one_by_one(
    tokenizer: Any, system: str | None, contents: list[str], context_length: int, min_output: int
) -> None:
    messages = conversation(system, contents)
    limits = {"context_length": context_length, "min_output": min_output}

    assert outcome(prompt_fit, tokenizer, messages, **limits) == outcome(
        reference_fit, tokenizer, messages, **limits
    )


@pytest.mark.parametrize("system", [None, "Be brief. " * 200])
@pytest.mark.parametrize("context_length", [1100, 2048, 4096])
def test_long_conversations_keep_the_same_turns(
    tokenizer: Any, system: str | None, context_length: int
) -> None:
    contents = [f"turn {i}: " + "word " * (5 + i % 37) for i in range(120)]
    messages = conversation(system, contents)
    limits = {"context_length": context_length, "min_output": 64}

    ids = prompt_fit(tokenizer, messages, **limits)

    assert ids == reference_fit(tokenizer, messages, **limits)
    assert len(ids) + 64 <= context_length


def test_a_500_message_conversation_is_rendered_whole_a_constant_number_of_times(
    tokenizer: Any,
) -> None:
    contents = [f"message {i} " + "word " * 20 for i in range(500)]
    messages = conversation("Be brief.", contents)
    counting = Counting(tokenizer)

    ids = prompt_fit(counting, messages, context_length=2048, min_output=64)

    text = tokenizer.decode(ids)
    assert "Be brief." in text and "message 499 " in text and "message 400 " not in text
    # One render of everything, one of the turns kept; dropping ~440 turns measured each
    # with at most two turns (plus the stand-in system prompt), never the whole conversation.
    full = [size for size in counting.render_sizes if size > 3]
    assert len(full) == 2
    assert len(counting.render_sizes) <= 2 * len(messages) + len(full)
    # Each character is encoded a bounded number of times: the conversation twice, a dropped
    # turn three times (the old way: 439 renders, 17.6 million characters encoded).
    assert counting.encoded_chars < 6 * len(tokenizer.apply_chat_template(messages, tokenize=False))


def test_what_fits_is_rendered_once(tokenizer: Any) -> None:
    counting = Counting(tokenizer)

    prompt_fit(
        counting,
        conversation("Be brief.", ["hi", "hello", "more?"]),
        context_length=8192,
        min_output=64,
    )

    assert counting.render_sizes == [4]


@pytest.mark.parametrize("system", [None, "Be brief."])
def test_a_last_message_too_long_alone_is_refused(tokenizer: Any, system: str | None) -> None:
    messages = conversation(system, ["short", "answer", "word " * 400])

    with pytest.raises(GenerationRefused, match=TOO_LONG):
        prompt_fit(tokenizer, messages, context_length=300, min_output=64)


class Uneven:
    """A template whose turns do not add up: its header's length jumps up and down with the
    number of messages, so the measured savings are sometimes short and sometimes long. One
    character, one token."""

    def apply_chat_template(
        self, messages: list[dict[str, str]], *, tokenize: bool, add_generation_prompt: bool
    ) -> str:
        header = "#" * (len(messages) * 7 % 5)
        body = "".join(f"<{m['role']}>{m['content']}|" for m in messages)
        return header + body + ("<assistant>" if add_generation_prompt else "")

    def encode(self, text: str, *, add_special_tokens: bool) -> list[int]:
        return [ord(c) for c in text]


@settings(max_examples=200, deadline=None)
@given(
    system=st.one_of(st.none(), st.text("abc", min_size=1, max_size=20)),
    contents=st.lists(st.text("xyz", min_size=4, max_size=30), min_size=1, max_size=20),
    context_length=st.integers(min_value=10, max_value=500),
)
def test_a_template_whose_turns_do_not_add_up_still_gets_the_same_turns(
    system: str | None, contents: list[str], context_length: int
) -> None:
    messages = conversation(system, contents)
    limits = {"context_length": context_length, "min_output": 1}

    assert outcome(prompt_fit, Uneven(), messages, **limits) == outcome(
        reference_fit, Uneven(), messages, **limits
    )
