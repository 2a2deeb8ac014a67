"""The shell scripts: rules that a run on a busy machine would otherwise break at random."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = [*sorted((REPO / "scripts").glob("*.sh")), REPO / ".ci" / "run"]
# A reader that quits at its first line or match, at the end of a pipeline.
EARLY_QUITTER = re.compile(r"\|\s*(?:grep\s+-\w*q\w*\b|head\b)")


def test_no_pipeline_under_pipefail_ends_in_a_reader_that_quits_early() -> None:
    """Under `set -o pipefail`, `ldconfig -p | grep -q lib` fails when grep quits at its match
    while ldconfig is still writing (SIGPIPE, status 141): on a loaded machine `scripts/run.sh`
    once read jemalloc as not installed. Such tests read to the end (`grep ... >/dev/null`)."""
    texts = {script: script.read_text() for script in SCRIPTS}
    offending = [
        f"{script.relative_to(REPO)}:{number}: {line.strip()}"
        for script, text in texts.items()
        if "pipefail" in text
        for number, line in enumerate(text.splitlines(), start=1)
        if EARLY_QUITTER.search(line) and "$(" not in line and not line.lstrip().startswith("#")
    ]
    assert offending == []
