"""Regular expressions that run in linear time (RE2): admin-written patterns cannot hang a
process with catastrophic backtracking. RE2 has no look-around and no back-references;
`validate_pattern` says so in words an admin can act on."""

from __future__ import annotations

from functools import lru_cache

import re2

MAX_PATTERN_LENGTH = 2000
_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.case_sensitive = False
# Bounded memory per compiled program, so a huge alternation fails validation instead of
# taking the worker's memory.
_OPTIONS.max_mem = 8 << 20
_BUILTIN_OPTIONS = re2.Options()
_BUILTIN_OPTIONS.log_errors = False
_BUILTIN_OPTIONS.case_sensitive = False
_BUILTIN_OPTIONS.max_mem = 64 << 20


class PatternError(ValueError):
    pass


@lru_cache(maxsize=1024)
def compile_pattern(pattern: str, *, builtin: bool = False) -> re2._Regexp:
    """A case-insensitive RE2 program for `pattern`; raises `PatternError` with a readable
    message when RE2 cannot compile it. `builtin` lifts the length limit meant for admin
    input (the shipped pattern groups are long alternations)."""
    if not builtin and len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"a pattern may be at most {MAX_PATTERN_LENGTH} characters")
    try:
        return re2.compile(pattern, _BUILTIN_OPTIONS if builtin else _OPTIONS)
    except re2.error as exc:
        detail = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
        raise PatternError(
            f"not a valid RE2 pattern ({detail}); look-arounds and back-references are not"
            " supported"
        ) from None


def set_options() -> re2.Options:
    """Options for an RE2 set of admin patterns (`re2.Set`): case-insensitive, with the
    memory bound of the built-in groups, since a set holds many patterns at once."""
    return _BUILTIN_OPTIONS


def word_pattern(word: str) -> str:
    """A pattern matching `word` (or phrase) as whole words, any spacing between its words."""
    parts = [re2.escape(part) for part in word.split()]
    return r"\b" + r"\s+".join(parts) + r"\b"


def validate_pattern(pattern: str) -> None:
    compile_pattern(pattern)
