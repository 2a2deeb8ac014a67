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
