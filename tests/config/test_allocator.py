"""The C allocator the app's processes run on (APP_ALLOCATOR): jemalloc, preloaded where it is
installed, as scripts/run.sh and the test stacks start them; glibc's malloc when asked."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.stack import allocator_env

JEMALLOC_INSTALLED = (
    "libjemalloc.so.2 " in subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
)


def _maps_of_a_python_started_with(env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", "print(open('/proc/self/maps').read())"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.mark.skipif(not JEMALLOC_INSTALLED, reason="libjemalloc2 is not installed (setup.sh)")
def test_a_process_started_with_the_default_runs_on_jemalloc() -> None:
    env = allocator_env({})
    assert env == {"LD_PRELOAD": "libjemalloc.so.2"}
    assert "libjemalloc.so.2" in _maps_of_a_python_started_with(env)


def test_system_keeps_glibcs_malloc_and_another_preload_is_kept() -> None:
    assert allocator_env({"APP_ALLOCATOR": "system", "LD_PRELOAD": "x.so"}) == {}
    if JEMALLOC_INSTALLED:
        assert allocator_env({"LD_PRELOAD": "libx.so"}) == {
            "LD_PRELOAD": "libjemalloc.so.2:libx.so"
        }
        env = {"LD_PRELOAD": "", **allocator_env({"APP_ALLOCATOR": "system"})}
        assert "libjemalloc" not in _maps_of_a_python_started_with(env)
