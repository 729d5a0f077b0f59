"""OpenTelemetry tracing: spans for HTTP requests, database transactions, Kafka publish
and consume, with the W3C ``traceparent`` carried in Kafka headers.

Off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set: without a provider the API's tracer
is a no-op, so the instrumentation below costs a few attribute lookups. A process
configures its provider once (``configure_tracing``); code only uses ``tracer()``.
Log lines carry ``trace_id`` and ``span_id`` while a span is recording, so a log line
leads to its trace and back.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from wms import __version__

TRACER_NAME = "wms"
KafkaHeaders = Sequence[tuple[str, str | bytes | None]] | Mapping[str, str | bytes | None]


def configure_tracing(
    service_name: str, endpoint: str | None, *, exporter: SpanExporter | None = None
) -> TracerProvider | None:
    """Install this process's tracer provider when an endpoint (or an exporter) is given."""
    if endpoint is None and exporter is None:
        return None
    if exporter is None:
        assert endpoint is not None
        # Imported here: the OTLP exporter pulls in requests and protobuf.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )

        exporter = OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces")
    resource = Resource.create({"service.name": service_name, "service.version": __version__})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return provider


def tracer() -> trace.Tracer:
    """The tracer of WMS code (a no-op until ``configure_tracing`` installed a provider)."""
    return trace.get_tracer(TRACER_NAME, __version__)


def add_trace_ids(_logger: object, _name: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: ``trace_id``/``span_id`` of the current span, when recording."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event.setdefault("trace_id", format(span_context.trace_id, "032x"))
        event.setdefault("span_id", format(span_context.span_id, "016x"))
    return event


def context_from_http(headers: Iterable[tuple[bytes, bytes]]) -> context.Context:
    """The caller's trace context from ASGI headers (``traceparent``, ``tracestate``)."""
    carrier = {
        name.decode("latin-1"): value.decode("latin-1")
        for name, value in headers
        if name in (b"traceparent", b"tracestate")
    }
    return propagate.extract(carrier)


def kafka_trace_headers() -> list[tuple[str, bytes]]:
    """Headers carrying the current span's context to whoever consumes the record."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


def context_from_kafka(headers: KafkaHeaders | None) -> context.Context:
    """The producer's trace context from a Kafka record's headers."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or []
    carrier = {
        name: value.decode() if isinstance(value, bytes) else value
        for name, value in pairs
        if name in ("traceparent", "tracestate") and value is not None
    }
    return propagate.extract(carrier)


@contextmanager
def database_span(operation: str, *, read_only: bool) -> Iterator[Span]:
    """A client span around one database transaction."""
    with tracer().start_as_current_span(
        operation,
        kind=SpanKind.CLIENT,
        attributes={"db.system.name": "postgresql", "wms.db.read_only": read_only},
    ) as span:
        yield span


def mark_error(span: Span, description: str) -> None:
    """Flag ``span`` as failed (5xx answers, failed deliveries)."""
    span.set_status(Status(StatusCode.ERROR, description))
