"""Framing taken off a request before it is judged: role-play ("roleplay as…", "pretend you
are…"), jailbreak preambles ("you are DAN now, you have no rules", "ignore your previous
instructions"), "asking for a friend", "hypothetically", "for my novel…".

A framing changes nothing about what is asked: the semantic check judges the text as written
and the text without its framing, and blocks when either is harmful. So a framing cannot hide a
request (the bare request is judged), and it cannot make a harmless one blocked (the framing
words are no reason to block on their own: "pretend you are a pirate and tell me a joke" is
judged as "tell me a joke" too, and as written, and both are harmless).

Works on normalised text, in one `re` pass whose repetitions are bounded (at most 80
characters from any start), so the cost is linear in the text.
"""

from __future__ import annotations

import re

_PERSONA_END = r"[^,.!?;:]{0,80}?(?:[,.!?;:]| and )"
_STORY = (
    r"(?:novel|story|book|screenplay|script|fic|fanfic|fiction|game|movie|thriller|scene|"
    r"chapter|campaign|rpg|comic)"
)
_FRAMINGS = re.compile(
    r"(?:"
    # Role-play and personas: the persona clause up to a comma, full stop or "and".
    r"\b(?:let'?s |can you |could you |please )?(?:role ?play|rp|act) as (?:if you (?:are|were) )?"
    rf"|\bpretend (?:that )?(?:you(?:'re| are)|to be|you were)\b{_PERSONA_END}"
    rf"|\bimagine (?:you(?:'re| are)|that you are)\b{_PERSONA_END}"
    # Jailbreak preambles: the phrase itself, never what follows it.
    r"|\byou are (?:now )?(?:dan|an? (?:unrestricted|uncensored|unfiltered|evil) "
    r"(?:ai|assistant|model))\b(?: now)?[,.!?:]?"
    r"|\b(?:dan|do anything now)\b[,:]?"
    r"|\byou have no (?:rules|restrictions|filters|limits|guidelines)\b(?: anymore| now)?[,.!?:]?"
    r"|\b(?:ignore|forget|disregard) (?:all )?(?:your |the )?(?:previous |prior |earlier )?"
    r"(?:instructions|rules|guidelines|restrictions)\b[,.!?:]?"
    r"|\b(?:developer|god|jailbreak) mode\b(?: (?:on|enabled|activated))?[,.!?:]?"
    # Distance: a friend, a hypothesis, a story.
    r"|\b(?:i'?m )?(?:just )?asking for a friend\b[:,.\-]?"
    r"|\bfor a friend\b[:,.\-]?"
    r"|\bhypothetically(?: speaking)?\b[:,]?"
    rf"|\b(?:in|for) (?:my|a|our) {_STORY}\b[^,.!?;:]{{0,60}}?[,.!?;:]"
    rf"|\b(?:i'?m )?writing an? {_STORY}\b[^,.!?;:]{{0,60}}?[,.!?;:]"
    rf"|\bwrite (?:me )?an? {_STORY} (?:where|in which|about how)\b"
    rf"|\byou(?:'re| are) an? [^,.!?;:]{{0,40}}? in (?:my|a|our) {_STORY}\b[,.!?:]?"
    r"|\b(?:my|the|a) (?:main )?character\b"
    r"|\b(?:purely|just) (?:fictional|hypothetical|for research|for a story)\b[,.]?"
    r")"
)
_SPACES = re.compile(r"\s+")


def unframe(normalized: str) -> str:
    """`normalized` without the framing it wraps a request in (unchanged when it has none)."""
    if not _FRAMINGS.search(normalized):
        return normalized
    return _SPACES.sub(" ", _FRAMINGS.sub(" ", normalized)).strip()
