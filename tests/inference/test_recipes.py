"""Where registered models' weights come from (`inference/recipes.py`) and `prepare_model`
over several models: chunks joined and checked, the real Gemma packages found, names, --all,
--enable, and the project's chat template for a base model."""

from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pytest_django import Settings

from inference.management.commands import prepare_model
from inference.models import LanguageModel
from inference.recipes import (
    DEFAULT_MODEL,
    RECIPES,
    TRANSCRIPT_STOP,
    TRANSCRIPT_TEMPLATE,
    Recipe,
)

GEMMA = "gemma3-270m"


def chunked_recipe(root: Path, monkeypatch: pytest.MonkeyPatch, parts: list[bytes]) -> Recipe:
    """A recipe whose chunks are real files in real (importable) packages under `root`."""
    files = []
    for index, data in enumerate(parts):
        package = root / f"fake_chunk_{index}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"model.gguf.part{index}").write_bytes(data)
        files.append((package.name, f"data/model.gguf.part{index}"))
    monkeypatch.syspath_prepend(str(root))
    return Recipe(
        model="fake",
        target="fake",
        package="fake-gguf",
        files=tuple(files),
        gguf_name="model.gguf",
        sha256=hashlib.sha256(b"".join(parts)).hexdigest(),
    )


def test_chunks_are_joined_in_order_and_checked_against_the_checksum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = chunked_recipe(tmp_path / "site", monkeypatch, [b"GGUF-one-", b"two-", b"three"])
    out = tmp_path / "out"
    out.mkdir()

    joined = recipe.gguf_in(out)

    assert joined == out / "model.gguf"
    assert joined.read_bytes() == b"GGUF-one-two-three"


def test_chunks_that_do_not_match_the_checksum_are_refused_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = chunked_recipe(tmp_path / "site", monkeypatch, [b"GGUF-one-", b"two"])
    tampered = dataclasses.replace(recipe, sha256="0" * 64)
    out = tmp_path / "out"
    out.mkdir()

    with pytest.raises(CommandError, match="sha256"):
        tampered.gguf_in(out)

    assert list(out.iterdir()) == []


def test_a_changed_chunk_makes_the_fingerprint_differ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = chunked_recipe(tmp_path / "site", monkeypatch, [b"GGUF-one-", b"two"])
    before = recipe.fingerprint()

    recipe.source_paths()[1].write_bytes(b"two, longer")

    assert recipe.fingerprint() != before
    assert len(before["chunks"]) == 2


def test_a_missing_chunk_package_names_the_pypi_package_to_install() -> None:
    recipe = Recipe(
        model="x", target="x", package="x-gguf", files=(("no_such_chunk_pkg", "a"),), gguf_name="a"
    )

    with pytest.raises(CommandError, match=r"PyPI: x-gguf"):
        recipe.source_paths()


def test_the_installed_gemma_packages_join_into_the_published_gguf(tmp_path: Path) -> None:
    """The real chunk packages from requirements/lock-model-gemma3.txt (about 253 MB)."""
    recipe = RECIPES[GEMMA]

    joined = recipe.gguf_in(tmp_path)

    assert joined.stat().st_size == sum(path.stat().st_size for path in recipe.source_paths())
    assert joined.read_bytes()[:4] == b"GGUF"


def test_the_transcript_template_renders_a_conversation_for_a_base_model() -> None:
    # The options transformers renders chat templates with.
    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    messages = [
        {"role": "system", "content": "Be brief. "},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": " Hello!"},
        {"role": "user", "content": "What is 2+2?"},
    ]

    prompt = environment.from_string(TRANSCRIPT_TEMPLATE).render(
        bos_token="<bos>", messages=messages, add_generation_prompt=True
    )

    assert prompt == "<bos>Be brief.\n\nUser: Hi\nAssistant: Hello!\nUser: What is 2+2?\nAssistant:"
    # Whatever the model writes as the next turn's label is where its answer stops.
    assert all(stop.strip() + " " in prompt for stop in TRANSCRIPT_STOP)


@pytest.mark.django_db
def test_gemma_is_registered_disabled_with_its_stop_sequences() -> None:
    gemma = LanguageModel.objects.get(name=GEMMA)

    assert not gemma.enabled and not gemma.is_default
    assert gemma.weights == RECIPES[GEMMA].target
    assert gemma.stop_sequences == list(TRANSCRIPT_STOP)
    assert gemma.queue == "inference.gemma3-270m"


# --- the command over several models -------------------------------------------------------


@pytest.fixture
def conversions(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list:
    """Each conversion the command runs, recorded; it writes a stand-in result (the real
    conversions are tested in test_prepare_model.py and the engine tests)."""
    settings.INFERENCE_MODEL_DIR = tmp_path
    calls: list[tuple[str, str | None]] = []

    def record(source: Path, destination: Path, log: Any, *, chat_template: str | None) -> None:
        calls.append((source.name, chat_template))
        (destination / "config.json").write_text("{}")

    monkeypatch.setattr(prepare_model, "convert", record)
    return calls


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("prepare_model", *args, stdout=out)
    return out.getvalue()


def test_without_names_only_the_default_model_is_prepared(conversions: list) -> None:
    run()

    assert conversions == [(RECIPES[DEFAULT_MODEL].gguf_name, None)]


def test_all_prepares_every_recipe_with_its_template_and_leaves_no_joined_gguf(
    conversions: list, tmp_path: Path
) -> None:
    run("--all")

    assert conversions == [
        ("SmolLM2-135M-Instruct.Q4_1.gguf", None),
        ("gemma-3-270m-q4_k_m.gguf", TRANSCRIPT_TEMPLATE),
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gemma3-270m", "smollm2-135m-instruct"]
    assert not list(tmp_path.rglob("*.gguf"))
    # Prepared now: a second run converts nothing.
    assert "already prepared" in run(GEMMA)
    assert len(conversions) == 2


def test_an_unknown_name_is_refused_before_anything_is_converted(conversions: list) -> None:
    with pytest.raises(CommandError, match="known: gemma3-270m, smollm2-135m"):
        run(GEMMA, "no-such-model")

    assert conversions == []


@pytest.mark.django_db
def test_enable_offers_the_prepared_model(conversions: list) -> None:
    output = run(GEMMA, "--enable")

    assert LanguageModel.objects.get(name=GEMMA).enabled
    assert f"{GEMMA}: enabled" in output
