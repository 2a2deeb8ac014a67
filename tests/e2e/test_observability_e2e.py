"""Logs, traces and the engine's metrics on the real stack (Daphne, a Celery worker hosting vLLM,
PostgreSQL, Redis), for one chat message sent over a real websocket:
- every process writes JSON lines; the message's lines carry its ids, in the web process and
  in the worker, and no line holds the message's text;
- Daphne's access-log lines name the request id of their HTTP request (the one its own lines
  and its `X-Request-ID` name) or of their websocket connection;
- the processes export their spans over OTLP/HTTP to a receiver in this test, and the message
  is one connected trace from the websocket frame in the web process to the closing write in
  the worker;
- the web's /metrics shows vLLM's own `vllm:*` metrics from the worker.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from chatclient.client import GenerationResult
from tests.e2e.metrics_support import staff_client, user_client
from tests.support.otlp import OtlpReceiver, ReceivedSpan
from tests.support.stack import Stack, start_stack

pytestmark = pytest.mark.e2e

# What a chat's trace must hold, in the order of the message's path.
WEB_SPANS = ["ws chat.send", "chat.admission", "moderation.input", "enqueue inference.generate"]
WORKER_SPANS = ["run/inference.generate", "generation.prepare", "engine.generate", "generation.end"]


@dataclass
class Observed:
    stack: Stack
    receiver: OtlpReceiver
    request_id: str
    content: str
    result: GenerationResult
    user_id: int
    conversation_id: str
    secret: str  # the part of the content no line may hold, even cut from the rest
    # HTTP requests made before the chat: path -> (status, the response's X-Request-ID)
    http: dict[str, tuple[int, str]]
    http_request_id: str  # the id the client gave the first of them


@pytest.fixture(scope="module")
def observed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Observed]:
    receiver = OtlpReceiver()
    endpoint = receiver.start()
    stack = start_stack(
        workdir=tmp_path_factory.mktemp("observed-stack"),
        database=f"{os.environ.get('E2E_DATABASE', 'chat_e2e')}_observed",
        redis_db=int(os.environ.get("E2E_REDIS_DB", "15")) - 1,
        extra_env={
            "LOG_FORMAT": "json",
            "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
            # Spans leave each process within a fifth of a second (the SDK's default is 5 s).
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "INFERENCE_AUTO_TITLES": "false",
        },
    )
    try:
        user = user_client(stack)
        me = user.request("GET", "/api/auth/me")
        # A sentence no log line may hold: a made-up secret the user confides.
        secret = uuid.uuid4().hex[:12]
        content = f"My locker code is {secret}; please keep it secret."
        request_id = f"obs-{uuid.uuid4().hex[:12]}"
        # Two requests whose ids the access log must name: one the client gives (/metrics
        # without a credential, whose 401 Django logs too), one the server makes.
        http_request_id = f"http-{uuid.uuid4().hex[:12]}"
        http = {
            "/metrics": http_get(stack, "/metrics", request_id=http_request_id),
            "/readyz": http_get(stack, "/readyz"),
        }

        async def chat() -> tuple[dict[str, Any], GenerationResult]:
            async with user.connect() as session:
                # The engine's first request after its start is slow (its warm-up): the trace
                # to show is of a message like every later one.
                warm = await session.send("Hello.", options={"max_tokens": 4})
                await session.collect(warm["generation_id"])
                accepted = await session.send(
                    content, request_id=request_id, options={"max_tokens": 16}
                )
                assert accepted["type"] == "chat.accepted", accepted
                return accepted, await session.collect(accepted["generation_id"])

        accepted, result = asyncio.run(chat())
        assert result.final is not None and result.final["type"] == "generation.done"
        # The worker logs a generation's ending after its closing write has published
        # generation.done: give that line a moment to reach the log.
        # (Celery's "received" line names it too, inside the task's arguments: wait for the
        # line whose own field does.)
        field = f'"generation_id": "{result.generation_id}"'
        deadline = time.monotonic() + 15
        while field not in stack.log("worker") and time.monotonic() < deadline:
            time.sleep(0.2)
        yield Observed(
            stack,
            receiver,
            request_id,
            content,
            result,
            int(me["id"]),
            accepted["conversation_id"],
            secret,
            http,
            http_request_id,
        )
    finally:
        stack.stop()
        receiver.stop()


def http_get(stack: Stack, path: str, *, request_id: str | None = None) -> tuple[int, str]:
    headers = {"X-Request-ID": request_id} if request_id else {}
    request = urllib.request.Request(stack.base_url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers["X-Request-ID"]
    except urllib.error.HTTPError as error:
        return error.code, error.headers["X-Request-ID"]


# What reaches the worker's log without going through Python's logging, and so cannot be JSON:
# the output of vLLM's engine processes that is not a vLLM log record (progress bars, native
# torch warnings, warnings of those processes), Celery's warning about running as root (the
# test machine; the images run as a user), and a leaked-semaphore note at exit.
NOT_LOGGED = re.compile(
    r"(Loading safetensors checkpoint shards: .*"
    r"|Triton is installed, but doesn't include CPU backend\. Disabling Triton\."
    r"|\[W\d{4} .*\] Warning: .*"
    r"|/\S+\.py:\d+: (FutureWarning|UserWarning|SecurityWarning): .*"
    r"|  .*|absolutely not recommended!|Please specify a different user using the --uid option\."
    r"|User information: uid=0 .*|worker: Warm shutdown \(MainProcess\)|\s*)"
)


def json_lines(stack: Stack, name: str, *, not_logged: re.Pattern[str] | None = None) -> list[dict]:
    """Every line of a process's log, each parsed as JSON (a line that is not fails, unless it
    is one that `not_logged` describes)."""
    lines = [line for line in stack.log(name).splitlines() if line.strip()]
    assert lines, f"{name} wrote no log"
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            if not_logged is None or not not_logged.fullmatch(line):
                pytest.fail(f"a {name} log line is not JSON: {line[:300]!r}")
    return parsed


def test_every_process_logs_json_with_the_message_ids_and_never_its_text(
    observed: Observed,
) -> None:
    generation_id = observed.result.generation_id
    conversation_id = observed.conversation_id
    for name in ("web", "worker"):
        lines = json_lines(
            observed.stack, name, not_logged=NOT_LOGGED if name == "worker" else None
        )
        assert all({"time", "level", "logger", "message"} <= set(line) for line in lines), name
        mine = [line for line in lines if line.get("generation_id") == generation_id]
        assert mine, f"no {name} log line names generation {generation_id}"
        for line in mine:
            assert line["request_id"] == observed.request_id, (name, line)
            assert line["user_id"] == str(observed.user_id), (name, line)
            assert line["conversation_id"] == conversation_id, (name, line)
            # With tracing on, a line names its trace too.
            assert len(line["trace_id"]) == 32, (name, line)
        text = observed.stack.log(name)
        assert observed.content not in text and observed.secret not in text, name
        answer = observed.result.final["text"]  # type: ignore[index]
        assert len(answer) < 12 or answer not in text, f"the answer is in the {name} log"


def test_the_access_log_names_the_request_id_of_each_request_and_connection(
    observed: Observed,
) -> None:
    lines = json_lines(observed.stack, "web")
    access = [line for line in lines if line["logger"] == "daphne.access"]
    assert access and all(line.get("request_id") for line in access), access[:3]
    (refused, (status, given)), (ready, (ready_status, made)) = observed.http.items()
    assert (status, given) == (401, observed.http_request_id)
    assert ready_status == 200 and made and made != given
    for path, request_id, answered in ((refused, given, 401), (ready, made, 200)):
        (line,) = [line for line in access if line["request_id"] == request_id]
        assert line["message"] == f"GET {path} {answered}"
    # The request's own line (Django's about the 401) names it too.
    own = [line for line in lines if line.get("request_id") == given and line not in access]
    assert [line["message"] for line in own] == ["Unauthorized: /metrics"], own
    # A websocket connection's lines (the chat's) share one id, its handshake's.
    by_connection: dict[str, list[str]] = {}
    for line in access:
        if line["message"].startswith("WS"):
            by_connection.setdefault(line["request_id"], []).append(line["message"].split()[0])
    assert list(by_connection.values()) == [["WSCONNECTING", "WSCONNECT", "WSDISCONNECT"]]


def trace_of(spans: list[ReceivedSpan], generation_id: str) -> list[ReceivedSpan]:
    roots = [
        span
        for span in spans
        if span.name == "ws chat.send"
        and span.attributes.get("chat.generation_id") == generation_id
    ]
    if not roots:
        return []
    return [span for span in spans if span.trace_id == roots[0].trace_id]


def test_one_message_is_one_connected_trace_across_the_web_and_the_worker(
    observed: Observed,
) -> None:
    generation_id = observed.result.generation_id
    spans = observed.receiver.wait_for(
        lambda spans: (
            {s.name for s in trace_of(spans, generation_id)} >= {*WEB_SPANS, *WORKER_SPANS}
        ),
        timeout=30,
    )
    trace = trace_of(spans, generation_id)
    names = {span.name for span in trace}
    assert names >= {*WEB_SPANS, *WORKER_SPANS}, sorted(names)

    by_id = {span.span_id: span for span in trace}
    (root,) = [span for span in trace if not span.parent_id]
    assert root.name == "ws chat.send" and root.service == "chat-web"
    # Connected: every other span's parent is a span of this trace.
    assert all(span.parent_id in by_id for span in trace if span is not root)

    def parent(name: str) -> ReceivedSpan:
        (span,) = [s for s in trace if s.name == name]
        return by_id[span.parent_id]

    assert parent("chat.admission").name == "ws chat.send"
    assert parent("enqueue inference.generate").name == "chat.admission"
    # Across the processes through the task's headers.
    run = next(s for s in trace if s.name == "run/inference.generate")
    assert run.service == "chat-worker" and parent(run.name).service == "chat-web"
    assert parent(run.name).name == "enqueue inference.generate"
    for name in ("generation.prepare", "engine.generate", "generation.end"):
        assert parent(name).name == "run/inference.generate", name
    # The maintained instrumentations' spans sit inside the message's own.
    systems = {span.attributes.get("db.system") or span.attributes.get("db.system.name")
               for span in trace}  # fmt: skip
    assert {"postgresql", "redis"} <= systems, systems
    engine = next(s for s in trace if s.name == "engine.generate")
    assert engine.attributes["gen_ai.usage.output_tokens"] >= 1
    # No span carries the message's text.
    assert not any(observed.content in str(s.attributes) for s in trace)
    _print_trace(trace, root)


def _print_trace(trace: list[ReceivedSpan], root: ReceivedSpan) -> None:
    """The trace as an indented tree with durations (for docs/operations.md)."""
    children: dict[str, list[ReceivedSpan]] = {}
    for span in trace:
        children.setdefault(span.parent_id, []).append(span)

    def show(span: ReceivedSpan, depth: int) -> None:
        offset = (span.start_ns - root.start_ns) / 1e6
        where = f"{'  ' * depth}{span.name} [{span.service}]"
        print(f"{where} +{offset:.1f} ms, {span.duration_ms:.1f} ms")
        for child in sorted(children.get(span.span_id, []), key=lambda s: s.start_ns):
            show(child, depth + 1)

    show(root, 0)


def test_the_web_metrics_show_the_engine_metrics_of_the_worker(observed: Observed) -> None:
    text = staff_client(observed.stack).request("GET", "/metrics")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    names = {name for name, _ in samples}

    def total(name: str) -> float:
        return sum(value for (found, _), value in samples.items() if found == name)

    assert (
        total("vllm:generation_tokens_total")
        >= observed.result.final["usage"][  # type: ignore[index]
            "completion_tokens"
        ]
    )
    assert total("vllm:prompt_tokens_total") >= 1
    assert total("vllm:time_to_first_token_seconds_count") >= 1
    assert "vllm:num_requests_running" in names and "vllm:kv_cache_usage_perc" in names
    # Each worker's gauges are its own series.
    running = [labels for (name, labels) in samples if name == "vllm:num_requests_running"]
    assert all(dict(labels).get("pid") for labels in running), running
