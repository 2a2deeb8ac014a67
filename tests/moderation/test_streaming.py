"""Output moderation of streamed text: hold-back windows, overlap, code fences, redaction."""

from __future__ import annotations

import pytest

from moderation.models import ModerationEvent
from moderation.services import rule_create
from moderation.streaming import OutputModerator


def _moderator(**kwargs: object) -> OutputModerator:
    """A moderator with sentence windows from the start (the early first window is off unless
    a test turns it on)."""
    kwargs.setdefault("first_window_chars", 0)
    return OutputModerator(user_id=None, conversation_id="c1", generation_id="g1", **kwargs)  # type: ignore[arg-type]


def _stream(moderator: OutputModerator, text: str, step: int = 3) -> str:
    released = "".join(moderator.feed(text[i : i + step]) for i in range(0, len(text), step))
    return released + moderator.finish()


def test_text_is_held_until_its_window_is_checked(rules_db: None) -> None:
    moderator = _moderator()
    assert moderator.feed("Hello there") == ""  # no sentence end yet
    assert moderator.feed(", friend. How") == "Hello there, friend. "
    assert moderator.finish() == "How"


def test_the_early_first_window_releases_the_first_checked_words_at_once(
    rules_db: None,
) -> None:
    moderator = _moderator(first_window_chars=1)
    assert moderator.feed("Once") == "Once"
    assert moderator.feed(" upon a") == ""  # then sentence windows as usual
    assert moderator.feed(" time. The") == " upon a time. "
    assert moderator.finish() == "The"


def test_the_early_first_window_waits_for_its_minimum_and_keeps_a_number_whole(
    rules_db: None,
) -> None:
    moderator = _moderator(first_window_chars=8)
    assert moderator.feed("Call") == ""  # 4 characters: below the first window
    assert moderator.feed(" me at 650") == "Call me at "  # the digits wait for the rest
    released = moderator.feed("-253-0000 today. ")
    assert "0000" not in released  # the whole number was seen, and redacted
    assert not moderator.blocked


def test_a_violation_in_the_early_first_window_is_never_released(rules_db: None) -> None:
    moderator = _moderator(first_window_chars=1)
    assert moderator.feed("I will kill you") == ""
    assert moderator.blocked
    assert moderator.released_text == ""


def test_a_phrase_begun_in_the_early_first_window_is_caught_in_the_next(rules_db: None) -> None:
    moderator = _moderator(first_window_chars=1)
    assert moderator.feed("Go kill") == "Go kill"  # alone, harmless
    assert moderator.feed(" yourself now. ") == ""  # the overlap sees the whole phrase
    assert moderator.blocked
    assert moderator.released_text == "Go kill"


def test_a_long_sentence_is_released_at_the_window_size(rules_db: None) -> None:
    moderator = _moderator(window_chars=50)
    assert moderator.feed("word " * 9) == ""  # 45 characters: below the window
    released = moderator.feed("longword " * 2)
    assert 0 < len(released) <= 50
    assert released.endswith(" ")  # cut between words, never inside one
    assert released + moderator.finish() == "word " * 9 + "longword " * 2


def test_released_text_equals_the_input_when_nothing_is_caught(rules_db: None) -> None:
    text = "First sentence. Second one!\nA list:\n- item\n" + "long " * 100 + "end"
    moderator = _moderator()
    assert _stream(moderator, text) == text
    assert not moderator.blocked


def test_a_match_split_across_windows_is_caught(rules_db: None) -> None:
    # The first window is cut by length right after "kill"; "yourself" opens the next one.
    moderator = _moderator(window_chars=60, overlap_chars=30)
    prefix = "a " * 25 + "go kill "
    first = moderator.feed(prefix + "yourself now and more words follow here")
    assert "yourself" not in first
    released = first + moderator.finish()
    assert moderator.blocked
    assert "harassment" in moderator.categories
    assert "yourself" not in released
    assert moderator.message


def test_without_overlap_the_split_match_would_be_missed(rules_db: None) -> None:
    moderator = _moderator(window_chars=60, overlap_chars=0)
    prefix = "a " * 25 + "go kill "
    _stream(moderator, prefix + "yourself now and more words follow here", step=200)
    assert not moderator.blocked  # proves the overlap is what catches it above


def test_after_a_block_nothing_more_is_released(rules_db: None) -> None:
    moderator = _moderator()
    moderator.feed("I will kill you. ")
    assert moderator.blocked
    assert moderator.feed("More text. ") == ""
    assert moderator.finish() == ""
    event = ModerationEvent.objects.get()
    assert (event.direction, event.generation_id, event.conversation_id) == ("output", "g1", "c1")
    assert event.action == "block"


def test_an_admin_rule_blocks_output(rules_db: None) -> None:
    rule_create(pattern="bluefish", categories=["test"], direction="output")
    moderator = _moderator()
    released = _stream(moderator, "Sure. The word is bluefish. Done.")
    assert moderator.blocked and moderator.categories == ["test"]
    assert released == "Sure. "


def test_profanity_checks_skip_fenced_code(rules_db: None, settings: object) -> None:
    settings.MODERATION_PROFANITY_ACTION = "block"  # type: ignore[attr-defined]
    text = "Run this:\n```bash\n# the shit script\nkill -9 1234\n```\nDone.\n"
    moderator = _moderator()
    assert _stream(moderator, text) == text
    assert not moderator.blocked


def test_a_code_block_spanning_windows_is_still_skipped(rules_db: None, settings: object) -> None:
    settings.MODERATION_PROFANITY_ACTION = "block"  # type: ignore[attr-defined]
    code = "```\n" + "x = 1\n" * 60 + "# shit happens\n" + "y = 2\n" * 5 + "```\n"
    moderator = _moderator(window_chars=40, overlap_chars=10)
    assert _stream(moderator, code) == code
    moderator = _moderator(window_chars=40, overlap_chars=10)
    _stream(moderator, code + "Well, shit. ")
    assert moderator.blocked  # outside the fence the same word counts


@pytest.mark.parametrize("step", [1, 4, 500])
def test_personal_data_in_output_is_redacted_even_in_code(rules_db: None, step: int) -> None:
    text = (
        "Contact: jane@example.com or call (415) 555-2671 today.\n"
        "```\nemail = 'bob@example.org'\n```\n"
    )
    moderator = _moderator()
    released = _stream(moderator, text, step=step)
    assert "jane@example.com" not in released and "bob@example.org" not in released
    assert "555-2671" not in released
    assert released.count("[email]") == 2 and "[phone]" in released
    assert not moderator.blocked


def test_a_phone_number_at_the_window_edge_is_held_whole(rules_db: None) -> None:
    moderator = _moderator(window_chars=40, overlap_chars=0)
    text = "x" * 5 + " words words words call (415) 555-2671 please and more"
    released = _stream(moderator, text, step=1)
    assert "[phone]" in released and "2671" not in released


def test_self_harm_in_output_gets_the_supportive_message(rules_db: None) -> None:
    moderator = _moderator()
    _stream(moderator, "Here is how to kill myself quickly. ")
    assert moderator.blocked
    assert "988" in moderator.message


async def test_afeed_runs_the_checks_off_the_event_loop(rules_db: None) -> None:
    moderator = _moderator()
    released = await moderator.afeed("Fine text. ") + await moderator.afinish()
    assert released == "Fine text. "


async def test_sync_feed_on_an_event_loop_is_refused(rules_db: None) -> None:
    with pytest.raises(RuntimeError, match="afeed"):
        _moderator().feed("text. ")
