"""The prose inside fenced code: comments are words addressed to a reader, not code.

Checks that skip code (word lists, toxicity: "kill -9", "git push --force") see fenced blocks
blanked. That also hid requests written as code comments ("```js // keylogger that emails
every keystroke to me ```", a TODO asking for a hateful slogan): the semantic check, which
reads meaning and was trained with the programming hard negatives ("kill the child
process"), is given the comments of each block as prose, with the code itself still blanked.

A comment is the rest of a line after `#`, `//`, `--` or `;` at its start (after indentation),
after `<!--`, `/*` or a `*` continuation, or after ` # ` / ` // ` following code. Works line by
line in one pass: linear, and the length is kept (offsets hold, as for `mask_code_fences`).
"""

from __future__ import annotations

import re

from moderation.normalize import _FENCE

# A comment starting a line (after indentation), or following code after a space.
_COMMENT = re.compile(r"^[ \t]*(?:#+|//+|--|;+|<!--|/\*+|\*+)(?!\S*[=({])|[ \t](?:#|//)[ \t]")


def keep_comments(code: str) -> str:
    """`code` with everything but its comments' words replaced by spaces (newlines kept)."""
    lines = []
    for line in code.split("\n"):
        match = _COMMENT.search(line)
        if match is None:
            lines.append(" " * len(line))
        else:
            lines.append(" " * match.end() + line[match.end() :])
    return "\n".join(lines)


def mask_code_keeping_comments(text: str, *, starts_inside: bool = False) -> str:
    """`text` with fenced code blanked except its comments (see the module docstring)."""
    pieces: list[str] = []
    inside = starts_inside
    cursor = 0
    for match in _FENCE.finditer(text):
        if inside:
            pieces.append(keep_comments(text[cursor : match.start()]))
            pieces.append(" " * (match.end() - match.start()))
        else:
            pieces.append(text[cursor : match.start()])
            pieces.append(" " * (match.end() - match.start()))
        cursor = match.end()
        inside = not inside
    rest = text[cursor:]
    pieces.append(keep_comments(rest) if inside else rest)
    return "".join(pieces)
