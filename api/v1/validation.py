"""A chat completion request, checked field by field against what the platform supports.

Supported: `model`, `messages` (roles system, developer (as system), user, assistant; content as
a string or a list of text parts), `max_completion_tokens` / `max_tokens`, `temperature`,
`top_p`, `stop`, `seed`, `n` (1 only), `stream`, `stream_options.include_usage`, `user`.
Accepted and ignored: `metadata`, `store` (false), `service_tier`, `parallel_tool_calls`,
`safety_identifier`, `prompt_cache_key`, and the default values of the refused fields.
Refused with a 400 naming the field: tools and functions, logprobs, logit_bias, penalties,
non-text response formats and modalities, audio, predictions, web search, and any field
OpenAI's API does not have ("Unrecognized request argument supplied").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from api.v1.errors import OpenAIError, invalid
from chat.generation.admission import Turn

MODEL_MAX_CHARS = 128
STOP_MAX_SEQUENCES = 4
STOP_MAX_CHARS = 256
USER_MAX_CHARS = 256
SEED_BOUND = 2**63
ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
IGNORED = {
    "metadata",
    "store",
    "service_tier",
    "parallel_tool_calls",
    "safety_identifier",
    "prompt_cache_key",
    "user",
}
# Refused unless they hold the value that means "not used".
REFUSED_UNLESS_DEFAULT: dict[str, tuple[Any, ...]] = {
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),
    "functions": (None, []),
    "function_call": (None, "none", "auto"),
    "logprobs": (None, False),
    "top_logprobs": (None, 0),
    "logit_bias": (None, {}),
    "presence_penalty": (None, 0, 0.0),
    "frequency_penalty": (None, 0, 0.0),
    "response_format": (None, {"type": "text"}),
    "modalities": (None, ["text"]),
    "audio": (None,),
    "prediction": (None,),
    "web_search_options": (None,),
    "reasoning_effort": (None,),
    "verbosity": (None,),
}
KNOWN = {
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "seed",
    "n",
    "stream",
    "stream_options",
    *IGNORED,
    *REFUSED_UNLESS_DEFAULT,
}


@dataclass(frozen=True, slots=True)
class CompletionRequest:
    model: str
    turns: list[Turn]
    options: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False


def _number(data: dict[str, Any], name: str, low: float, high: float) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise invalid(f"{name}: a number from {low:g} to {high:g}", param=name)
    return float(value)


def _integer(data: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise invalid(f"{name}: an integer from {low} to {high}", param=name)
    return value


def _content(value: Any, index: int) -> str:
    param = f"messages[{index}].content"
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value:
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise invalid(f"{param}: only text parts are supported", param=param)
            if not isinstance(part.get("text"), str):
                raise invalid(f"{param}: a text part needs a string 'text'", param=param)
            texts.append(part["text"])
        return "".join(texts)
    raise invalid(f"{param}: a string or a list of text parts", param=param)


def _turns(messages: Any) -> list[Turn]:
    limit = settings.API_MAX_MESSAGES
    if not isinstance(messages, list) or not messages:
        raise invalid("messages: a non-empty list of messages is required", param="messages")
    if len(messages) > limit:
        raise invalid(f"messages: at most {limit} messages", param="messages")
    turns, total = [], 0
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid(f"messages[{index}]: an object", param=f"messages[{index}]")
        role = message.get("role")
        if role not in ROLES:
            raise invalid(
                f"messages[{index}].role: one of {', '.join(ROLES)} (tools are not supported)",
                param=f"messages[{index}].role",
            )
        if message.get("tool_calls") or message.get("function_call"):
            raise invalid("tool calls are not supported", param=f"messages[{index}].tool_calls")
        content = _content(message.get("content"), index)
        if not content.strip():
            raise invalid(
                f"messages[{index}].content: must not be empty",
                param=f"messages[{index}].content",
            )
        total += len(content)
        turns.append(Turn(role=ROLES[role], content=content))
    if total > settings.API_MAX_INPUT_CHARS:
        raise invalid(
            f"messages: at most {settings.API_MAX_INPUT_CHARS} characters in all",
            param="messages",
            code="string_above_max_length",
        )
    if turns[-1].role != "user":
        raise invalid("messages: the last message must have the role 'user'", param="messages")
    return turns


def _stop(value: Any) -> list[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if (
        not isinstance(values, list)
        or not 0 < len(values) <= STOP_MAX_SEQUENCES
        or not all(isinstance(item, str) and 0 < len(item) <= STOP_MAX_CHARS for item in values)
    ):
        raise invalid(
            f"stop: a string or up to {STOP_MAX_SEQUENCES} strings of 1 to {STOP_MAX_CHARS} "
            "characters",
            param="stop",
        )
    return list(values)


def completion_request(data: dict[str, Any]) -> CompletionRequest:
    """The request's checked fields; raises `OpenAIError` (400) naming the first bad one."""
    for name in data:
        if name not in KNOWN:
            raise invalid(f"Unrecognized request argument supplied: {name}", param=name)
    for name, defaults in REFUSED_UNLESS_DEFAULT.items():
        if name in data and data[name] not in defaults:
            raise invalid(f"{name}: not supported by this server", param=name)
    model = data.get("model")
    if not isinstance(model, str) or not 0 < len(model) <= MODEL_MAX_CHARS:
        raise invalid("model: the name of a model is required (see GET /v1/models)", param="model")
    turns = _turns(data.get("messages"))
    if data.get("n") not in (None, 1):
        raise invalid("n: only 1 choice per request is supported", param="n")
    stream = data.get("stream")
    if stream not in (None, True, False):
        raise invalid("stream: true or false", param="stream")
    stream_options = data.get("stream_options")
    include_usage = False
    if stream_options is not None:
        if not stream:
            raise invalid(
                "stream_options: only allowed when stream is true", param="stream_options"
            )
        if not isinstance(stream_options, dict) or set(stream_options) - {"include_usage"}:
            raise invalid("stream_options: only include_usage is supported", param="stream_options")
        include_usage = stream_options.get("include_usage", False)
        if not isinstance(include_usage, bool):
            raise invalid("stream_options.include_usage: true or false", param="stream_options")
    user = data.get("user")
    if user is not None and (not isinstance(user, str) or len(user) > USER_MAX_CHARS):
        raise invalid(f"user: a string of at most {USER_MAX_CHARS} characters", param="user")
    options: dict[str, Any] = {}
    for name in ("max_completion_tokens", "max_tokens"):
        value = _integer(data, name, 1, 1_000_000)
        if value is not None and "max_tokens" not in options:
            options["max_tokens"] = value
    temperature = _number(data, "temperature", 0.0, 2.0)
    if temperature is not None:
        options["temperature"] = temperature
    top_p = _number(data, "top_p", 0.0, 1.0)
    if top_p is not None:
        if top_p <= 0:
            raise invalid("top_p: greater than 0", param="top_p")
        options["top_p"] = top_p
    stop = _stop(data.get("stop"))
    if stop:
        options["stop"] = stop
    seed = _integer(data, "seed", -SEED_BOUND, SEED_BOUND - 1)
    if seed is not None:
        options["seed"] = seed
    return CompletionRequest(
        model=model, turns=turns, options=options, stream=bool(stream), include_usage=include_usage
    )


__all__ = ["CompletionRequest", "OpenAIError", "completion_request"]
