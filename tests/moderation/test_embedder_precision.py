"""MiniLM in bfloat16 where the CPU computes it natively: chosen from the CPU's flags or the
setting, the vectors those of float32 within rounding, and the seed cache kept apart per
precision."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from moderation.checks import embedders, semantic
from moderation.checks.embedders import MiniLMEncoder, bf16_wanted

TEXTS = [
    "How do I reset my router to factory settings?",
    "Write a poem about the sea at night.",
    "Quelle est la capitale de l'Australie ?",
]


@pytest.mark.parametrize(
    ("setting", "flags", "wanted"),
    [
        ("auto", {"avx2", "avx512f", "avx512_bf16"}, True),
        ("auto", {"avx2", "amx_bf16", "amx_tile"}, True),
        ("auto", {"avx2", "avx512f", "avx512bw"}, False),
        ("auto", set(), False),
        ("on", set(), True),
        ("off", {"avx512_bf16"}, False),
    ],
)
def test_bfloat16_is_chosen_from_the_setting_and_the_cpu_flags(
    monkeypatch: pytest.MonkeyPatch, setting: str, flags: set[str], wanted: bool
) -> None:
    monkeypatch.setattr(embedders, "cpu_flags", lambda: frozenset(flags))
    with override_settings(MODERATION_SEMANTIC_BF16=setting):
        assert bf16_wanted() is wanted


def test_cpu_flags_are_read_from_this_machine() -> None:
    flags = embedders.cpu_flags()
    if Path("/proc/cpuinfo").exists():
        assert "fpu" in flags  # every x86-64 CPU has it; a parse that finds nothing fails
    else:
        assert flags == frozenset()


def test_bfloat16_vectors_match_float32_ones() -> None:
    with override_settings(MODERATION_SEMANTIC_BF16="off"):
        exact = MiniLMEncoder()
    with override_settings(MODERATION_SEMANTIC_BF16="on"):
        fast = MiniLMEncoder()
    assert (exact.precision, fast.precision) == ("fp32", "bf16")
    a, b = exact.encode(TEXTS), fast.encode(TEXTS)
    assert a.dtype == b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(axis=1).min() > 0.999
    # Far apart texts stay far apart: rounding does not collapse them.
    assert (b[0] * b[1]).sum() < 0.9


class _Encoder:
    def __init__(self, precision: str) -> None:
        self.name = "all-minilm-l6-v2"
        self.precision = precision
        self.calls = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        value = 1.0 if self.precision == "fp32" else 2.0
        return np.full((len(texts), 4), value, dtype=np.float32)


def test_seed_vectors_are_cached_apart_per_precision(tmp_path: Path) -> None:
    with override_settings(MODERATION_SEMANTIC_CACHE_DIR=str(tmp_path)):
        exact, fast = _Encoder("fp32"), _Encoder("bf16")
        assert semantic.seed_vectors(exact, TEXTS)[0, 0] == 1.0
        assert semantic.seed_vectors(fast, TEXTS)[0, 0] == 2.0  # not fp32's file
        again = _Encoder("bf16")
        assert semantic.seed_vectors(again, TEXTS)[0, 0] == 2.0
        assert again.calls == 0  # read from bf16's file
        assert len(list(tmp_path.glob("seeds-*.npy"))) == 2
