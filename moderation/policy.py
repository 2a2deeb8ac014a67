"""The moderation policy: OpenAI's moderation taxonomy, plus privacy and PII, and what the
operator wants done with each category.

Every check names what it found with these categories (older names, still found in admin rules
and stored events, are read through `canonical`). The operator sets an action per category in
the admin (*Category policies*, applied live) or in `MODERATION_CATEGORY_ACTIONS`
("sexual=flag,violence/graphic=allow"), the admin's winning:

- `block` (the default): the check's own verdict stands;
- `flag`: a block in this category only flags the text for review (it is sent);
- `allow`: the category is ignored.

The same categories are the keys of `/v1/moderations` results. docs/moderation.md lists what
each one covers, with examples of what is and is not blocked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from enum import StrEnum
from functools import lru_cache

from django.conf import settings

from moderation.types import Action, Verdict


class Category(StrEnum):
    HARASSMENT = "harassment"
    HARASSMENT_THREATENING = "harassment/threatening"
    HATE = "hate"
    HATE_THREATENING = "hate/threatening"
    # Wrongdoing: fraud, scams, cybercrime (malware, phishing, intrusion, stolen cards),
    # drugs; "violent": weapons, explosives, poisons.
    ILLICIT = "illicit"
    ILLICIT_VIOLENT = "illicit/violent"
    SELF_HARM = "self-harm"
    SELF_HARM_INTENT = "self-harm/intent"
    SELF_HARM_INSTRUCTIONS = "self-harm/instructions"
    SEXUAL = "sexual"
    SEXUAL_MINORS = "sexual/minors"
    VIOLENCE = "violence"
    VIOLENCE_GRAPHIC = "violence/graphic"
    # Doxxing and stalking: finding or exposing where a person lives, works or goes.
    PRIVACY = "privacy"
    # Personal data in the text itself: redacted, not blocked.
    PII = "pii"


class CategoryAction(StrEnum):
    BLOCK = "block"
    FLAG = "flag"
    ALLOW = "allow"


# Names used before the taxonomy (admin rules, stored events, the guard check's old mapping).
LEGACY_NAMES: dict[str, str] = {
    "self_harm": Category.SELF_HARM.value,
    "sexual_minors": Category.SEXUAL_MINORS.value,
    "weapons": Category.ILLICIT_VIOLENT.value,
    "drugs": Category.ILLICIT.value,
    "crime": Category.ILLICIT.value,
    "cybercrime": Category.ILLICIT.value,
    "fraud": Category.ILLICIT.value,
    "doxxing": Category.PRIVACY.value,
    "stalking": Category.PRIVACY.value,
}


def canonical(category: str) -> str:
    """The taxonomy's name for `category`; names outside it (an admin rule's "spam",
    "profanity", "unchecked") are kept as they are."""
    return LEGACY_NAMES.get(category, category)


def is_self_harm(category: str) -> bool:
    return canonical(category).startswith(Category.SELF_HARM.value)


def parse_actions(items: Iterable[str]) -> dict[str, CategoryAction]:
    """`["sexual=flag", ...]` as a mapping; raises ValueError on an unknown category or action
    (settings fail at start rather than ignore a typo)."""
    actions: dict[str, CategoryAction] = {}
    known = {c.value for c in Category}
    for item in items:
        name, sep, value = item.partition("=")
        name, value = canonical(name.strip()), value.strip()
        if not sep or name not in known:
            raise ValueError(f"{item!r}: expected CATEGORY=ACTION, CATEGORY one of {sorted(known)}")
        try:
            actions[name] = CategoryAction(value)
        except ValueError:
            raise ValueError(f"{item!r}: the action is one of block, flag, allow") from None
    return actions


@lru_cache(maxsize=4)
def _actions(items: tuple[str, ...]) -> dict[str, CategoryAction]:
    return parse_actions(items)


def configured_actions() -> dict[str, CategoryAction]:
    """`MODERATION_CATEGORY_ACTIONS`, parsed (once per value; the app validates it at start)."""
    return _actions(tuple(settings.MODERATION_CATEGORY_ACTIONS))


def category_action(category: str, admin: Mapping[str, str] | None = None) -> CategoryAction:
    """The operator's action for `category`: the admin's (`admin`, the *Category policies*
    rows of the loaded snapshot) over `MODERATION_CATEGORY_ACTIONS`. A sub-category without a
    setting of its own follows its parent ("self-harm=flag" covers "self-harm/intent"); an
    admin row for the sub-category itself wins over either's parent."""
    name = canonical(category)
    parent = name.split("/", 1)[0]
    configured = configured_actions()
    for source in (admin or {}, configured):
        if name in source:
            return CategoryAction(source[name])
    for source in (admin or {}, configured):
        if parent in source:
            return CategoryAction(source[parent])
    return CategoryAction.BLOCK


def apply(verdict: Verdict, admin: Mapping[str, str] | None = None) -> Verdict:
    """`verdict` with its categories in the taxonomy's names and the operator's actions
    (`category_action`) applied: a block becomes a flag, or nothing, when every category it
    names says so. Redactions and flags are left as they are, apart from the names."""
    categories = tuple(dict.fromkeys(canonical(c) for c in verdict.categories))
    if verdict.action is not Action.BLOCK or not categories:
        if categories == verdict.categories:
            return verdict
        return dataclasses.replace(verdict, categories=categories)
    kept: list[str] = []
    strongest = Action.ALLOW
    for category in categories:
        action = category_action(category, admin)
        if action is CategoryAction.ALLOW:
            continue
        kept.append(category)
        capped = Action.BLOCK if action is CategoryAction.BLOCK else Action.FLAG
        if capped.severity > strongest.severity:
            strongest = capped
    if strongest is Action.ALLOW:
        return Verdict(Action.ALLOW)
    return dataclasses.replace(verdict, action=strongest, categories=tuple(kept))
