"""Text normalisation, so that obfuscated words are seen for what they are.

"f u c k", "f*ck", full-width letters, "fu<zero-width space>ck", "1d10t" and "idiot" spelled
with Cyrillic letters all come out as plain lower-case ASCII-looking words. The result is used
for matching only, never shown or stored, so it may lose offsets and punctuation.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# Characters that render as nothing and are used to split words past a filter.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"),
    None,
)

# Look-alikes from other scripts that NFKC leaves alone (Cyrillic, Greek, IPA). NFKC already
# folds full-width, mathematical and circled letters.
_CONFUSABLES = str.maketrans(
    # Cyrillic, Greek and IPA look-alikes, then typographic apostrophes.
    (
        "\u0430\u0432\u0435\u0451\u0437\u0438\u0456\u0457\u0458\u043a\u043c\u043d"
        "\u043e\u043f\u0440\u0441\u0442\u0443\u0445\u0455\u0501\u0261\u0131\u0269"
        "\u03b1\u03b2\u03b5\u03b7\u03b9\u03ba\u03bd\u03bf\u03c1\u03c4\u03c5\u03c7"
        "\u03c9\u2113\u2019\u2018\u02bc\u2032"
    ),
    "abee3uiijkmhonpctyxsdgiiabenikvoptuxwl''''",
)

# Leetspeak, applied only inside tokens that also contain letters ("1d10t", "sh1t"), so that
# numbers ("2000", "1 + 1") are left as they are.
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
     "@": "a", "$": "s", "!": "i", "|": "l", "€": "e"}
)  # fmt: skip
# A whole run of token characters, matched greedily and never re-tried from inside the run:
# linear in the text. (The letter test is done on the run afterwards; a pattern that required a
# letter inside the run, as this one once did, backtracked over every start position of a long
# run without letters, "____" or "1111": quadratic, 35 s for 30,000 underscores.)
_LEET_TOKEN = re.compile(r"[\w@$!|€]+")
_HAS_LETTER = re.compile(r"[a-z]")
_HAS_LEET = re.compile(r"[0-9@$!|€]")
# "f u c k", "f.u.c.k", "f-u-c-k": three or more single letters split by one separator.
_SPACED = re.compile(r"\b(?:[a-z][ .\-_*]){2,}[a-z]\b")
_SEPARATORS = re.compile(r"[ .\-_*]")
# "fuuuuck" -> "fuuck": three or more of one letter become two.
_STRETCHED = re.compile(r"([a-z])\1{2,}")
_WHITESPACE = re.compile(r"\s+")


def _deleet(match: re.Match[str]) -> str:
    token = match.group(0)
    if not _HAS_LEET.search(token) or not _HAS_LETTER.search(token):
        return token
    # A trailing "!" is punctuation ("stop!"), not an "i".
    stripped = token.rstrip("!")
    return stripped.translate(_LEET) + token[len(stripped) :]


@lru_cache(maxsize=512)
def normalize(text: str) -> str:
    """The matching form of `text`: NFKC, no invisible characters, look-alikes and leetspeak
    mapped to letters, accents dropped, spaced-out letters joined, lower case, single spaces.

    Cached because several checks normalise the same text in one pipeline run.
    """
    folded = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).casefold()
    folded = folded.translate(_CONFUSABLES)
    # Drop accents: decompose and remove the combining marks ("fück" -> "fuck").
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch)
    )
    folded = _LEET_TOKEN.sub(_deleet, folded)
    folded = _SPACED.sub(lambda m: _SEPARATORS.sub("", m.group(0)), folded)
    folded = _STRETCHED.sub(r"\1\1", folded)
    return _WHITESPACE.sub(" ", folded).strip()


_FENCE = re.compile(r"^[ \t]{0,3}(```|~~~)", re.MULTILINE)


def fence_open_after(text: str, *, starts_inside: bool = False) -> bool:
    """Whether a fenced code block is still open at the end of `text`."""
    return (len(_FENCE.findall(text)) % 2 == 1) != starts_inside


def mask_code_fences(text: str, *, starts_inside: bool = False) -> str:
    """`text` with the content of fenced code blocks (```/~~~) replaced by spaces.

    The length is kept, so offsets found in the masked text index the original. An unclosed
    fence masks to the end; `starts_inside` says a fence opened before this text began (a
    streamed window in the middle of a code block).
    """
    pieces: list[str] = []
    inside = starts_inside
    cursor = 0
    for match in _FENCE.finditer(text):
        if inside:
            pieces.append(_blank(text[cursor : match.end()]))
        else:
            pieces.append(text[cursor : match.start()])
            pieces.append(_blank(text[match.start() : match.end()]))
        cursor = match.end()
        inside = not inside
    rest = text[cursor:]
    pieces.append(_blank(rest) if inside else rest)
    return "".join(pieces)


def _blank(segment: str) -> str:
    # Newlines stay so that sentence and line structure of the prose around is unchanged.
    return "".join("\n" if ch == "\n" else " " for ch in segment)
