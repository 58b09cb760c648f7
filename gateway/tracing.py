"""OpenTelemetry spans of the gateway: off by default, when a call site costs one `None` check.

Attributes carry only bounded, secret-free values: systems, account names, operation labels,
route templates' operation names, statuses, counts and error codes — never a URL, an id a caller
sent, a token or a message. The trace context crosses process boundaries as a W3C
`traceparent` string (in the task record, and in the events a task publishes).
"""

import contextlib
import re
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.trace import (
    Span,
    SpanKind,
    Status,
    StatusCode,
    Tracer,
    TracerProvider,
    get_current_span,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import AttributeValue

from gateway.settings import TracingSettings

TRACEPARENT = re.compile(r"^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
"""The W3C `traceparent` header value, as carried by task records and events."""

INSTRUMENTATION = "qontract-gateway"
MAX_ERROR_CODES = 8

Attributes = dict[str, AttributeValue]

_PROPAGATOR = TraceContextTextMapPropagator()
_OFF: AbstractContextManager[None] = contextlib.nullcontext()


@dataclass
class _State:
    """This process's tracer (None: tracing off) and the provider it comes from."""

    provider: TracerProvider | None = None
    tracer: Tracer | None = None


_state = _State()


def configure(settings: TracingSettings) -> None:
    """Turn tracing on or off in this process; the first `on` builds the OTLP exporter.

    A provider given to `install` before is kept (tests record spans in memory that way).
    """
    if not settings.enabled:
        _state.tracer = None
        return
    if _state.provider is None:
        _state.provider = _otlp_provider(settings)
    _state.tracer = _state.provider.get_tracer(INSTRUMENTATION)


def install(provider: TracerProvider | None) -> None:
    """Record spans with `provider` from now on; None turns tracing off and forgets it."""
    _state.provider = provider
    _state.tracer = None if provider is None else provider.get_tracer(INSTRUMENTATION)


def enabled() -> bool:
    """True when spans are being recorded in this process."""
    return _state.tracer is not None


def span(
    name: str,
    attributes: Attributes | None = None,
    *,
    traceparent: str | None = None,
    kind: SpanKind = SpanKind.INTERNAL,
) -> AbstractContextManager[Span | None]:
    """A current span (None when tracing is off); `traceparent` makes it that trace's child.

    Exceptions are neither recorded nor turned into a status (their messages may hold what a
    span must not): call sites set `failed` with an error code.
    """
    tracer = _state.tracer
    if tracer is None:
        return _OFF
    return tracer.start_as_current_span(
        name,
        context=_parent(traceparent),
        kind=kind,
        attributes=attributes,
        record_exception=False,
        set_status_on_exception=False,
    )


def failed(current: Span | None, code: str) -> None:
    """Mark `current` as failed with an error code (never a message)."""
    if current is not None:
        current.set_attribute("error.type", code)
        current.set_status(Status(StatusCode.ERROR, code))


def describe_operation(
    current: Span, name: str, kind: str, codes: tuple[str, ...] | None = None
) -> None:
    """Name a GraphQL operation span by its bounded label; note its outcome and error codes."""
    current.update_name(f"{kind} {name}")
    current.set_attributes(
        {
            "graphql.operation.name": name,
            "graphql.operation.type": kind,
            "qontract.outcome": "error" if codes is not None else "ok",
        }
    )
    if codes is not None:
        current.set_attribute("qontract.error_codes", codes)
        failed(current, codes[0] if codes else "GRAPHQL_ERROR")


def annotate(attributes: Attributes) -> None:
    """Add `attributes` to the current span, when tracing is on."""
    if _state.tracer is not None:
        get_current_span().set_attributes(attributes)


def error_codes(codes: Iterable[object]) -> tuple[str, ...]:
    """Distinct string codes, in order, at most `MAX_ERROR_CODES`, each at most 64 characters."""
    distinct = dict.fromkeys(str(code)[:64] for code in codes if isinstance(code, str))
    return tuple(distinct)[:MAX_ERROR_CODES]


def current_traceparent() -> str | None:
    """The W3C `traceparent` of the current span, or None when tracing is off or no span is."""
    if _state.tracer is None:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def _parent(traceparent: str | None) -> Context | None:
    if traceparent is None or not TRACEPARENT.match(traceparent):
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


def _otlp_provider(settings: TracingSettings) -> TracerProvider:
    """The SDK's provider with a batching OTLP/HTTP exporter (imported only when tracing is on)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = SdkTracerProvider(
        resource=Resource.create({SERVICE_NAME: settings.service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.sample_ratio)),
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(settings.otlp_endpoint)))
    return provider
