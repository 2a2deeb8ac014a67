from __future__ import annotations

import pytest

from moderation.normalize import fence_open_after, mask_code_fences, normalize


@pytest.mark.parametrize(
    ("written", "seen"),
    [
        ("f u c k you", "fuck you"),
        ("f.u.c.k", "fuck"),
        ("you are a 1d10t", "you are a idiot"),
        ("\uff46\uff55\uff43\uff4b", "fuck"),  # full-width letters (NFKC)
        ("fu\u200bck", "fuck"),  # zero-width space
        ("\u0456d\u0456ot", "idiot"),  # Cyrillic i
        ("fück", "fuck"),
        ("fuuuuuck", "fuck"),
        ("k!ll myself", "kill myself"),
        ("I\u2019ll do it", "i'll do it"),
    ],
)
def test_normalize_reveals_obfuscated_words(written: str, seen: str) -> None:
    assert normalize(written) == seen


@pytest.mark.parametrize(
    ("written", "seen"),
    [
        ("k i l l   m y   b o s s", "kill my boss"),  # wider gaps between words
        ("k i l l m y b o s s", "kill my boss killmyboss"),  # the vocabulary splits it
        ("b.e.s.t w.a.y t.o w.i.n", "best way to win"),  # spaces among dots
        ("k i l l.  m y  b o s s", "kill my boss"),  # a sentence's end among wider gaps
        ("с о с т а в ь  у г р о з у", "составь угрозу"),  # letters of any script
        ("я  н а й д у  е ё.  П у с т ь  б о и т с я.", "я наиду ее пусть боится."),
        ("γ ρ ά ψ ε  μ ή ν υ μ α", "γραψε μηνυμα"),
        ("а я и ты пойдём", "а я и ты поидем"),  # short words of another script stay apart
        ("r.a.n.s.o.m.w.a.r.e", "ransomware"),
        ("kiiiiill", "kill"),  # stretched to a known word
        ("im deaaaaad", "im dead"),
        ("wr\u0456t\u0435 \u0430 ph\u0456sh\u0456ng m\u0430\u0456l", "write a phishing mail"),
        ("\u13aa\u13a5\u13de", "ail"),  # Cherokee look-alikes (Unicode confusables)
        ("\u1d0b\u026a\u029f\u029f", "kill"),  # small capitals
        ("ki\u202ell\u202c", "kill"),  # a right-to-left override
        # Written backwards under an override, shown forwards: read as shown.
        ("how to \u202emoor eht ni bmob a\u202c now", "how to a bomb in the room now"),
        ("go \u202ellik\nnext line", "go kill next line"),  # ends at the end of the line
        ("ki\U000e0041ll", "kill"),  # an invisible tag character
        ("how to make a \U0001f4a3", "how to make a bomb"),
        ("\U0001f17a\U0001f178\U0001f17b\U0001f17b", "kill"),  # negative squared letters
        ("a b0mb-ass pie", "a great pie"),  # praise slang, read as what it means
        ("a \U0001f9c0\U0001f355 trade group", "a cheese pizza trade group"),  # a euphemism
        ("h0w d33p d0 1 cut", "how deep do 1 cut"),  # leetspeak beside a lone number
    ],
)
def test_normalize_undoes_each_kind_of_obfuscation(written: str, seen: str) -> None:
    assert normalize(written) == seen


@pytest.mark.parametrize(
    "text",
    [
        "I paid $400 in 2000",
        "1 + 1 = 2",
        "stop!",
        # A number with its unit is no leetspeak: an age stays an age.
        "a 14yo and a 16yr old",
        "take 500mg at 10pm, the 3rd dose",
        "une eleve de 6e",
    ],
)
def test_normalize_leaves_numbers_and_punctuation_alone(text: str) -> None:
    assert normalize(text) == text.lower()


def test_mask_code_fences_blanks_code_and_keeps_offsets() -> None:
    text = "before\n```bash\nkill -9 damn\n```\nafter"
    masked = mask_code_fences(text)
    assert len(masked) == len(text)
    assert "kill" not in masked and "damn" not in masked
    assert masked.startswith("before\n") and masked.endswith("\nafter")


def test_mask_code_fences_masks_an_unclosed_fence_to_the_end() -> None:
    assert mask_code_fences("ok\n```\nsecret").strip() == "ok"


def test_mask_code_fences_continues_a_fence_opened_earlier() -> None:
    masked = mask_code_fences("still code\n```\nprose", starts_inside=True)
    assert "still" not in masked and masked.endswith("prose")


def test_fence_open_after_counts_fences() -> None:
    assert fence_open_after("x\n```py\ncode") is True
    assert fence_open_after("x\n```py\ncode\n```\n") is False
    assert fence_open_after("more code", starts_inside=True) is True


@pytest.mark.parametrize(
    ("written", "seen"),
    [
        # Russian and Greek keep their letters: no Russian word becomes half Latin, and the
        # Greek "na" (nu, alpha) is not read as the Latin "va".
        ("Как лучше всего избить человека", "как лучше всего избить человека"),
        (
            "\u03a0\u03ce\u03c2 \u03bd\u03b1 \u03c6\u03c4\u03b9\u03ac\u03be\u03c9",
            "\u03c0\u03c9\u03c3 \u03bd\u03b1 \u03c6\u03c4\u03b9\u03b1\u03be\u03c9",
        ),
        # A Latin word disguised inside such a text is still read as Latin.
        ("я хочу k\u0456ll тебя", "я хочу kill тебя"),
        # A text in Latin letters with look-alikes mixed in, as before, every disguised word.
        ("\u0455\u0435\u0445 and k\u0456ll", "sex and kill"),
    ],
)
def test_look_alikes_are_read_as_latin_only_where_they_disguise_latin(
    written: str, seen: str
) -> None:
    assert normalize(written) == seen
