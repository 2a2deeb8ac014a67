"""How the engine's dtype and compilation follow the settings and the machine."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pytest_django import Settings

from inference import engine
from inference.engine import EngineSpec, engine_args


@pytest.fixture(autouse=True)
def spec(tmp_path: Path) -> EngineSpec:
    # An existing directory: vLLM's argument checks take any other path for a hub repo id.
    return EngineSpec(name="m", weights=str(tmp_path))


@pytest.fixture
def on_cpu(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(engine, "_on_cpu", lambda: True)
    return monkeypatch


@pytest.mark.parametrize(("native", "expected"), [(False, "float32"), (True, "auto")])
def test_auto_dtype_on_a_cpu_is_float32_only_without_native_bf16(
    settings: Settings, on_cpu: pytest.MonkeyPatch, native: bool, expected: str, spec: EngineSpec
) -> None:
    settings.INFERENCE_DTYPE = "auto"
    on_cpu.setattr(engine, "cpu_has_native_bf16", lambda: native)
    assert engine_args(spec).dtype == expected


def test_an_explicit_dtype_is_kept_even_where_it_is_slow(
    settings: Settings, on_cpu: pytest.MonkeyPatch, spec: EngineSpec
) -> None:
    settings.INFERENCE_DTYPE = "bfloat16"
    on_cpu.setattr(engine, "cpu_has_native_bf16", lambda: False)
    assert engine_args(spec).dtype == "bfloat16"


def test_auto_dtype_on_a_gpu_keeps_the_models_own(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, spec: EngineSpec
) -> None:
    settings.INFERENCE_DTYPE = "auto"
    monkeypatch.setattr(engine, "_on_cpu", lambda: False)
    monkeypatch.setattr(engine, "cpu_has_native_bf16", lambda: False)
    assert engine_args(spec).dtype == "auto"


@pytest.mark.parametrize(
    ("setting", "cpu", "eager"),
    [
        ("auto", True, True),
        ("auto", False, False),
        ("false", True, False),
        ("true", False, True),
    ],
)
def test_enforce_eager_follows_the_setting_and_auto_the_platform(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    cpu: bool,
    eager: bool,
    spec: EngineSpec,
) -> None:
    settings.INFERENCE_ENFORCE_EAGER = setting
    monkeypatch.setattr(engine, "_on_cpu", lambda: cpu)
    assert engine_args(spec).enforce_eager is eager


def test_the_engine_processes_start_with_onednns_kernel_cache_bounded(
    settings: Settings, on_cpu: pytest.MonkeyPatch
) -> None:
    on_cpu.delenv(engine.ONEDNN_CACHE_VARIABLE, raising=False)
    settings.INFERENCE_ONEDNN_PRIMITIVE_CACHE = 8
    with engine.engine_process_environment():
        # What a process started now (vLLM's engine core, and its worker) inherits.
        assert os.environ[engine.ONEDNN_CACHE_VARIABLE] == "8"
    # This process's own torch (moderation's embeddings) keeps oneDNN's default.
    assert engine.ONEDNN_CACHE_VARIABLE not in os.environ


def test_an_operators_own_onednn_setting_or_default_is_left_alone(
    settings: Settings, on_cpu: pytest.MonkeyPatch
) -> None:
    on_cpu.setenv(engine.ONEDNN_CACHE_VARIABLE, "256")
    settings.INFERENCE_ONEDNN_PRIMITIVE_CACHE = 8
    with engine.engine_process_environment():
        assert os.environ[engine.ONEDNN_CACHE_VARIABLE] == "256"
    assert os.environ[engine.ONEDNN_CACHE_VARIABLE] == "256"
    on_cpu.delenv(engine.ONEDNN_CACHE_VARIABLE)
    settings.INFERENCE_ONEDNN_PRIMITIVE_CACHE = None  # "default"
    with engine.engine_process_environment():
        assert engine.ONEDNN_CACHE_VARIABLE not in os.environ
