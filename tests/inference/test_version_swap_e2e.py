"""A worker changes version without a restart, on the REAL vLLM engine (CPU): the new
version's engine loads beside the old one while the old one still streams, the old one drains
(its running generation finishes on it, every token), and only then is it unloaded with its
processes. Prints how long each step took."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from inference.engine import EngineSpec, host
from tests.inference.conftest import vllm_pids

pytestmark = [pytest.mark.e2e]


async def _generate(
    engine: Any, spec: EngineSpec, tokens: int, times: list[float] | None = None
) -> tuple[int, float]:
    """Stream `tokens` tokens on `engine`, held like the worker holds it; the count and when
    the last one came (and when each output came, into `times`)."""
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    params = SamplingParams(max_tokens=tokens, ignore_eos=True, output_kind=RequestOutputKind.DELTA)
    count = 0
    with host.holding(spec):
        prompt = {"prompt_token_ids": engine.get_tokenizer().encode("Tell me a long story.")}
        async for output in engine.generate(prompt, params, uuid.uuid4().hex):
            count += len(output.outputs[0].token_ids)
            if times is not None:
                times.append(time.monotonic())
    return count, time.monotonic()


def test_a_new_version_loads_beside_the_old_which_drains_then_unloads(
    prepared_model_dir: Path,
) -> None:
    old = EngineSpec(
        name="smollm2-135m",
        weights=str(prepared_model_dir),
        tokenizer=str(prepared_model_dir),
        max_model_len=2048,
        version="swap-v1",
    )
    new = dataclasses.replace(old, version="swap-v2")
    try:
        started = time.monotonic()
        old_engine = host.engine_for(old)
        first_load = time.monotonic() - started
        old_children = set(host._children[old])
        times: list[float] = []
        running = asyncio.run_coroutine_threadsafe(
            _generate(old_engine, old, 160, times), host.loop
        )
        while len(times) < 3:  # streaming: its first tokens are out
            assert not running.done(), running
            time.sleep(0.05)

        started = time.monotonic()
        new_engine = host.engine_for(new)  # loads while the old one streams
        second_load = time.monotonic() - started
        assert host.loaded(old) and host.loaded(new)

        started = time.monotonic()
        assert host.drain_and_unload(old, timeout=300, grace=0.5)
        unloaded_at = time.monotonic()
        drained = unloaded_at - started

        tokens, last_token_at = running.result(timeout=5)
        assert tokens == 160, "the generation running on the old version finished on it"
        assert last_token_at <= unloaded_at, "the old engine went only once it had drained"
        assert not host.loaded(old) and host.loaded(new)
        time.sleep(1)
        assert not old_children & vllm_pids(), "the old version's processes are gone"

        count, _ = host.run(_generate(new_engine, new, 16), timeout=120)
        assert count == 16, "the new version answers"
        # The new engine is built on the engine loop, which the old one's stream shares:
        # that stream pauses meanwhile (docs/models.md).
        pause = max(b - a for a, b in itertools.pairwise(times))
        print(
            f"\nversion swap on this machine: first engine {first_load:.1f} s, second engine "
            f"loaded beside a streaming one {second_load:.1f} s, drain of the old one and its "
            f"unload {drained:.1f} s, longest pause of the old stream {pause:.1f} s"
        )
    finally:
        for spec in (old, new):
            host.drain_and_unload(spec, timeout=60, grace=0)
