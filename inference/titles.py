"""Automatic conversation titles, written by the model after the first answer.

A new conversation is titled with its first message, cut short (provisional). When the first
answer ends with some text (complete, or stopped by the user), `title_dispatch` enqueues
`inference.title` on the model's queue at the lowest Celery priority; the task asks the engine,
at a vLLM priority below every user's, for a short title of the first message, moderates it as
output, stores it unless the user renamed the conversation in the meantime, and sends
`conversation.updated` to every connection of the user.

A title is a comfort, not part of the answer: any failure keeps the provisional title, and the
few tokens it costs are not billed to the user.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection

from chat import events, selectors, services
from inference.prepare import MAX_USER_PRIORITY, model_cached, prompt_token_ids
from inference.versions import engine_of, served

logger = logging.getLogger(__name__)

TITLE_TASK = "inference.title"
# Celery's Redis transport serves 0 first: a title waits behind every answer.
CELERY_PRIORITY = 9
# vLLM serves the lowest value first; users' generations use 0..MAX_USER_PRIORITY.
VLLM_PRIORITY = MAX_USER_PRIORITY + 1
MAX_TOKENS = 16
TITLE_CHARS = 60
EXCERPT_CHARS = 600  # of the first message: enough to say what it is about
RUN_TIMEOUT_SECONDS = 120.0
# Answers after which a conversation is titled: a stopped one with text is an answer too.
TITLED_STATES = frozenset({"complete", "stopped"})
INSTRUCTION = (
    "You write a short title (two to five words) for each chat message. Reply with the title only."
)
# A few examples teach the default 135M model the form far better than instructions alone, and
# quoting the message keeps it from answering the message instead (measured on twelve first
# messages: 12 usable titles such as "How to Reverse a List in Python", against 9 unquoted and
# 3 with the examples inside one message). The answer is left out for the same reason.
EXAMPLES = (
    ("How do I bake sourdough bread?", "Baking Sourdough Bread"),
    ("Tell me about black holes. Keep it short.", "Black Holes Explained"),
    ("hey", "Greeting"),
    ("What's 12 times 7?", "Simple Multiplication"),
    ("Write a poem about autumn leaves.", "Autumn Leaves Poem"),
)

_PREFIX = re.compile(r"^\s*(?:title|subject|topic)\s*[:\-\u2013]\s*", re.IGNORECASE)
# Quotes (straight and typographic), markdown emphasis and headings around a title.
_WRAPPERS = "\"'`*#_ \u201c\u201d\u2018\u2019\u00ab\u00bb"


def _excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def _asking(message: str) -> str:
    return f'Message: "{message}"\nTitle:'


def title_messages(question: str) -> list[dict[str, str]]:
    """The chat-template messages that ask for a title of a conversation's first message."""
    messages = [{"role": "system", "content": INSTRUCTION}]
    for example, title in EXAMPLES:
        messages += [
            {"role": "user", "content": _asking(example)},
            {"role": "assistant", "content": title},
        ]
    return [*messages, {"role": "user", "content": _asking(_excerpt(question))}]


def _without_repeats(words: list[str]) -> list[str]:
    """Words without a small model's stutter: one word three times or more in a row ("Hello,
    Hello, Hello"), or an immediate repeat of two or three words ("in Python in Python"). A
    word said twice stays ("Bora Bora")."""

    def key(word: str) -> str:
        return word.strip(",.;:!?").lower()

    runs: list[list[str]] = []  # consecutive equal words
    for word in words:
        if runs and key(runs[-1][0]) == key(word):
            runs[-1].append(word)
        else:
            runs.append([word])
    out: list[str] = []
    for run in runs:
        out += run[:1] if len(run) >= 3 else run
    result: list[str] = []
    for word in out:
        result.append(word)
        for size in (2, 3):
            tail, before = result[-size:], result[-2 * size : -size]
            if len(before) == size and [key(w) for w in tail] == [key(w) for w in before]:
                del result[-size:]
                break
    return result


def title_clean(raw: str) -> str | None:
    """The model's reply as a title: its first line, without a "Title:" label, quotes, markdown
    or a closing full stop, cut at a word to TITLE_CHARS. None when nothing usable is left."""
    line = next((part for part in raw.splitlines() if part.strip()), "")
    line = _PREFIX.sub("", line).strip(_WRAPPERS)
    line = " ".join(_without_repeats(line.split())).rstrip(".:;,").strip(_WRAPPERS)
    if len(line) > TITLE_CHARS:
        cut = line[: TITLE_CHARS - 1]
        line = (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip(" ,;:-") + "…"
    if len(line) < 2 or not any(character.isalpha() for character in line):
        return None
    return line


# --- the trigger (in the thread that stores a generation's end) ---------------------------------


def first_question(*, final: dict[str, Any], owner_id: int) -> dict[str, Any] | None:
    """The question of this ended generation when it is the first answer (complete, or stopped
    with some text) of a provisionally titled conversation, else None. Reads the conversation
    (and, while it is provisional, the question) from the store."""
    if final.get("state") not in TITLED_STATES or not (final.get("content") or "").strip():
        return None
    conversation = selectors.conversation_get(
        conversation_id=final.get("conversation_id") or "", owner_id=owner_id
    )
    if conversation is None or conversation.get("title_source") != services.TITLE_PROVISIONAL:
        return None
    question = selectors.message_get(message_id=final.get("parent_id") or "", owner_id=owner_id)
    if question is None or question.get("parent_id"):
        return None  # not a first message
    return dict(question)


def title_wanted(*, final: dict[str, Any], owner_id: int) -> bool:
    """Whether this ended generation should title its conversation (see `first_question`)."""
    return first_question(final=final, owner_id=owner_id) is not None


def title_dispatch(*, final: dict[str, Any], owner_id: int) -> bool:
    """Enqueue a title for the conversation of `final` when it wants one. Never raises."""
    if not settings.INFERENCE_AUTO_TITLES:
        return False
    try:
        if not title_wanted(final=final, owner_id=owner_id):
            return False
        model = model_cached(name=final.get("model"))
        if model is None:
            return False
        from config.celery import app as celery_app

        celery_app.send_task(
            TITLE_TASK,
            kwargs={"generation_id": final["generation_id"], "owner_id": owner_id},
            queue=model.queue,
            priority=CELERY_PRIORITY,
        )
        return True
    except Exception:
        generation_id = final.get("generation_id")
        logger.warning("could not enqueue a title for %s", generation_id, exc_info=True)
        return False


# --- the task's work (on the engine loop) --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TitleJob:
    conversation_id: str
    owner_id: int
    engine: Any
    prompt_token_ids: list[int]


def title_prepare(*, generation_id: str, owner_id: int) -> TitleJob | None:
    """The request for a title, or None when the conversation no longer wants one."""
    try:
        answer = selectors.message_by_generation(generation_id=generation_id, owner_id=owner_id)
        question = first_question(final=answer, owner_id=owner_id) if answer else None
        model = model_cached(name=answer.get("model")) if answer and question else None
        if answer is None or question is None or model is None:
            return None
        # On the version that wrote the answer, while it serves (else the active one).
        serving = served(model=model, version_id=answer.get("model_version_id"))
        engine = engine_of(serving)
        ids = prompt_token_ids(
            engine.get_tokenizer(),
            title_messages(question["content"]),
            chat_template=serving.chat_template,
        )
        return TitleJob(answer["conversation_id"], owner_id, engine, ids)
    finally:
        connection.close()  # a pool thread of the engine loop


def title_store(*, conversation_id: str, owner_id: int, title: str) -> dict[str, Any] | None:
    """Moderate the model's title as output (redacted where needed; a blocked one is dropped)
    and store it. None when nothing was stored."""
    from moderation import pipeline
    from moderation.types import Direction

    try:
        outcome = pipeline.run(title, direction=Direction.OUTPUT)
    finally:
        connection.close()
    if outcome.blocked:
        logger.info("the model's title for %s was blocked: %s", conversation_id, outcome.categories)
        return None
    stored: dict[str, Any] | None = services.conversation_title_generated(
        conversation_id=conversation_id, owner_id=owner_id, title=outcome.text
    )
    return stored


def _sampling() -> Any:
    from vllm import SamplingParams
    from vllm.sampling_params import RequestOutputKind

    return SamplingParams(
        temperature=0.0,
        max_tokens=MAX_TOKENS,
        stop=["\n"],
        output_kind=RequestOutputKind.FINAL_ONLY,
    )


async def title_run(*, generation_id: str, owner_id: int, layer: Any = None) -> str | None:
    """Title the conversation of `generation_id`; the stored title, or None when it kept its
    old one (not wanted any more, an unusable reply, a rename in the meantime)."""
    job = await asyncio.to_thread(title_prepare, generation_id=generation_id, owner_id=owner_id)
    if job is None:
        return None
    request_id = f"title-{generation_id}-{uuid.uuid4().hex[:8]}"
    raw = ""
    async for output in job.engine.generate(
        {"prompt_token_ids": job.prompt_token_ids},
        _sampling(),
        request_id,
        priority=VLLM_PRIORITY,
    ):
        if output.finished:
            raw = output.outputs[0].text
    title = title_clean(raw)
    if title is None:
        # Its length, not the text: model output is never logged (config/logs.py).
        logger.info("no usable title for %s in %d characters", job.conversation_id, len(raw))
        return None
    stored = await asyncio.to_thread(
        title_store, conversation_id=job.conversation_id, owner_id=owner_id, title=title
    )
    if stored is None:
        return None
    await events.to_user(owner_id, events.conversation_updated(stored), layer=layer, reliably=True)
    return str(stored["title"])
