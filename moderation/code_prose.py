"""The prose inside code: comments and string literals are words addressed to a reader.

Checks that skip code (word lists, toxicity: "kill -9", "git push --force") see fenced blocks
blanked. That also hid requests written as code comments ("```js // keylogger that emails
every keystroke to me ```", a TODO asking for a hateful slogan): the semantic check, which
reads meaning and was trained with the programming hard negatives ("kill the child
process"), is given the comments of each block as prose, with the code itself still blanked.

A comment is the rest of a line after `#`, `//`, `--` or `;` at its start (after indentation),
after `<!--`, `/*` or a `*` continuation, or after ` # ` / ` // ` following code. The words of
a one-line string literal with a space in it (a message, a prompt, a list entry: `prompt =
f"nsfw, nude, {age} year old girl"`) are kept too; a literal without a space (a key, a path, a
format) is code. Works line by line in one pass: linear, and the length is kept (offsets hold,
as for `mask_code_fences`).

Outside fences, code is not blanked for any check: `code_as_prose` gives the semantic check the
words of such text as a reader would say them (`plan_ambush(target_address)` -> "plan ambush
target address"), judged besides the text as written.
"""

from __future__ import annotations

import re

from moderation.normalize import _FENCE

# A comment starting a line (after indentation), or following code after a space.
_COMMENT = re.compile(r"^[ \t]*(?:#+|//+|--|;+|<!--|/\*+|\*+)(?!\S*[=({])|[ \t](?:#|//)[ \t]")
# A string literal on one line. No nested quantifier: each quote starts at most one scan to the
# next quote of its kind.
_STRING = re.compile(r"\"[^\"\n]*\"|'[^'\n]*'|`[^`\n]*`")
_SPACE = re.compile(r"\s")


def keep_comments(code: str) -> str:
    """`code` with everything but the words of its comments and of its string literals with a
    space replaced by spaces (newlines kept)."""
    lines = []
    for line in code.split("\n"):
        match = _COMMENT.search(line)
        end = len(line) if match is None else match.start()
        kept = [" "] * end
        for literal in _STRING.finditer(line, 0, end):
            inner = literal.group()[1:-1]
            if _SPACE.search(inner):
                kept[literal.start() + 1 : literal.end() - 1] = inner
        if match is not None:
            kept.extend(" " * (match.end() - end) + line[match.end() :])
        lines.append("".join(kept))
    return "\n".join(lines)


def mask_code_keeping_comments(text: str, *, starts_inside: bool = False) -> str:
    """`text` with fenced code blanked except its comments and prose string literals (see
    the module docstring)."""
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


# Identifier joints: "plan_ambush", "killAllChildren", and code's brackets, operators and
# comment marks. Sentence punctuation (". , ; : ! ?") and apostrophes stay.
_CAMEL_JOINT = re.compile(r"(?<=[a-z])(?=[A-Z])")
_CODE_MARKS = re.compile(r"[_{}\[\]()=<>*#`|\\\"/$@+~^&]+")


def code_as_prose(text: str) -> str:
    """`text` as a reader would say its code: identifiers split at underscores and case
    changes, code marks as spaces; `text` itself when it has no code mark. One pass each."""
    if not _CODE_MARKS.search(text):
        return text
    return _CODE_MARKS.sub(" ", _CAMEL_JOINT.sub(" ", text))
