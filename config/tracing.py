"""OpenTelemetry traces: one trace per message, from the websocket frame to the closing write.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then
nothing of the SDK is imported, no library is instrumented, and `span()` hands out one shared
no-op context manager. On, each process exports its spans in batches over OTLP/HTTP
(protobuf) to that endpoint (a collector's port 4318), and the SDK reads the other standard
variables itself (`OTEL_SERVICE_NAME`, `OTEL_TRACES_SAMPLER`, `OTEL_BSP_SCHEDULE_DELAY`, ...).

Where the spans come from (docs/operations.md, "Traces"):
- the maintained instrumentations: Django (HTTP requests, web), Celery (the task run, whose
  parent comes from the task's headers, in the workers), Redis, psycopg and pymongo;
- our own, where no instrumentation exists: the consumer's frame (Channels has none), the
  admission, the enqueue (which puts the trace context into the task's headers, since the web
  process does not register the worker's tasks and Celery's instrumentation skips those), the
  preparation, the engine request and the closing write (inference.streaming).
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from config import logs

logger = logging.getLogger(__name__)

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")

_tracer: Any = None
_off = contextlib.nullcontext()


def enabled() -> bool:
    return _tracer is not None


def wanted() -> bool:
    """Whether this process's environment asks for traces."""
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(os.environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


def configure(service_name: str, *, django: bool = False, celery: bool = False) -> bool:
    """Turn tracing on in this process when the environment asks for it (see the module's
    docstring); True when it is on. Django's instrumentation adds a middleware, so with
    `django` this must run before the ASGI handler is built; Celery's, before tasks run."""
    global _tracer
    if _tracer is not None or not wanted():
        return _tracer is not None
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME", "").strip() or service_name
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    RedisInstrumentor().instrument()
    PsycopgInstrumentor().instrument()
    PymongoInstrumentor().instrument()
    if django:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument()
    if celery:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument()
    _tracer = trace.get_tracer("chat")
    logs.trace_ids = _trace_ids
    logger.info("tracing on: %s exports spans over OTLP/HTTP", name)
    return True


def _trace_ids() -> tuple[str, str] | None:
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "internal") -> Any:
    """A context manager: a span `name` under the current one while tracing is on (with the
    attributes that are not None), nothing otherwise. `kind`: internal, server, producer,
    consumer or client."""
    if _tracer is None:
        return _off
    return _started(name, kind, attributes or {})


@contextlib.contextmanager
def _started(name: str, kind: str, attributes: Mapping[str, Any]) -> Iterator[Any]:
    from opentelemetry.trace import SpanKind

    with _tracer.start_as_current_span(
        name,
        kind=SpanKind[kind.upper()],
        attributes={key: value for key, value in attributes.items() if value is not None},
    ) as current:
        yield current


def annotate(attributes: Mapping[str, Any]) -> None:
    """Set attributes (those not None) on the current span, when tracing is on."""
    if _tracer is None:
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    for key, value in attributes.items():
        if value is not None:
            current.set_attribute(key, value)


def headers() -> dict[str, str]:
    """The current trace context as message headers (W3C `traceparent`), for a task published
    by name; empty when tracing is off. Celery's instrumentation in the worker reads them."""
    if _tracer is None:
        return {}
    from opentelemetry.propagate import inject

    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier
