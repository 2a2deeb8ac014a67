"""Prompt building with the default model's real tokenizer and chat template."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from inference.models import LanguageModel
from inference.prepare import GenerationRefused, chat_messages, prompt_fit, sampling_for


@pytest.fixture(scope="module")
def tokenizer(prepared_model_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(prepared_model_dir))


def path_of(*turns: tuple[str, str]) -> list[dict[str, str | None]]:
    return [
        {"id": str(i), "role": role, "content": content, "parent_id": str(i - 1) if i else None}
        for i, (role, content) in enumerate(turns)
    ]


def test_chat_messages_put_the_system_prompt_first_and_skip_empty_turns() -> None:
    path = path_of(("user", "Hi"), ("assistant", ""), ("user", "Again?"))

    messages = chat_messages(system_prompt="Be brief.", path=path)

    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "user", "content": "Again?"},
    ]


def test_the_prompt_uses_the_models_chat_template(tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = chat_messages(system_prompt="Be brief.", path=path_of(("user", "What is 2+2?")))

    ids = prompt_fit(tokenizer, messages, context_length=8192, min_output=64)

    text = tokenizer.decode(ids)
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>")
    assert "<|im_start|>user\nWhat is 2+2?<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n")
    assert text.count("<|im_start|>system") == 1


def test_old_turns_are_dropped_to_fit_the_context_but_not_the_system_prompt(tokenizer) -> None:  # type: ignore[no-untyped-def]
    long = "word " * 300
    path = path_of(("user", "first " + long), ("assistant", long), ("user", "last question"))
    messages = chat_messages(system_prompt="Be brief.", path=path)

    ids = prompt_fit(tokenizer, messages, context_length=400, min_output=64)

    text = tokenizer.decode(ids)
    assert len(ids) + 64 <= 400
    assert "Be brief." in text and "last question" in text
    assert "first" not in text


def test_a_single_message_longer_than_the_context_is_refused(tokenizer) -> None:  # type: ignore[no-untyped-def]
    messages = chat_messages(system_prompt=None, path=path_of(("user", "word " * 500)))

    with pytest.raises(GenerationRefused):
        prompt_fit(tokenizer, messages, context_length=200, min_output=64)


def test_max_tokens_is_clamped_by_the_model_and_the_context_left() -> None:
    model = LanguageModel(
        name="m",
        context_length=1000,
        default_max_tokens=100,
        max_output_tokens=300,
        default_temperature=0.5,
        default_top_p=0.9,
        default_min_p=0.1,
        price_prompt_per_1k=Decimal(0),
        price_completion_per_1k=Decimal(0),
    )

    assert sampling_for(model, {}, prompt_tokens=10).max_tokens == 100
    assert sampling_for(model, {"max_tokens": 5000}, prompt_tokens=10).max_tokens == 300
    assert sampling_for(model, {"max_tokens": 5000}, prompt_tokens=900).max_tokens == 100
    assert sampling_for(model, {"temperature": 0}, prompt_tokens=10).temperature == 0
    assert sampling_for(model, {}, prompt_tokens=10).temperature == 0.5
    params = sampling_for(model, {}, prompt_tokens=10)
    assert (params.top_p, params.min_p) == (0.9, 0.1)
