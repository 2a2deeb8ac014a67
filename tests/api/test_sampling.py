"""What an API request's sampling options become in the worker (`inference.prepare`)."""

from __future__ import annotations

from decimal import Decimal

from inference.models import LanguageModel
from inference.prepare import sampling_for


def model() -> LanguageModel:
    return LanguageModel(
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


def test_top_p_stop_and_seed_from_the_request_reach_the_engine() -> None:
    params = sampling_for(model(), {"top_p": 0.5, "stop": ["END"], "seed": 7}, prompt_tokens=10)
    assert (params.top_p, params.stop, params.seed) == (0.5, ["END"], 7)


def test_without_them_the_models_defaults_hold() -> None:
    params = sampling_for(model(), {}, prompt_tokens=10)
    assert (params.top_p, params.seed) == (0.9, None)
    assert not params.stop


def test_the_api_knows_the_workers_words_for_a_prompt_too_long() -> None:
    from api.v1.completions import TOO_LONG_MESSAGE
    from inference.prepare import GenerationRefused, prompt_fit

    class Tokenizer:
        def apply_chat_template(self, messages: list, **_: object) -> str:
            return "x" * 100

        def encode(self, text: str, **_: object) -> list[int]:
            return [1] * len(text)

    try:
        prompt_fit(
            Tokenizer(), [{"role": "user", "content": "hi"}], context_length=50, min_output=1
        )
    except GenerationRefused as refused:
        assert str(refused) == TOO_LONG_MESSAGE
    else:
        raise AssertionError("a prompt longer than the context must be refused")


def test_the_models_own_stop_sequences_apply_after_the_requests() -> None:
    base_model = model()
    base_model.stop_sequences = ["\nUser:", "\nAssistant:"]

    asked = sampling_for(base_model, {"stop": ["END", "\nUser:"]}, prompt_tokens=10)
    alone = sampling_for(base_model, {}, prompt_tokens=10)

    assert asked.stop == ["END", "\nUser:", "\nAssistant:"]
    assert alone.stop == ["\nUser:", "\nAssistant:"]
