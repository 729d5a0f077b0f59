"""Outbox rows as CloudEvents 1.0 in structured mode (API.md §Events); pure, no I/O."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

SPEC_VERSION = "1.0"
CONTENT_TYPE = "application/cloudevents+json"
DATA_CONTENT_TYPE = "application/json"
SCHEMA_BASE = "https://wms.example/schemas/events/"
EVENTS_TOPIC = "wms.events"
INBOUND_TOPIC = "wms.orders.inbound"
ORDER_CREATE_REQUESTED = "wms.order.create.requested"
_REQUIRED = ("specversion", "id", "source", "type")


@dataclass(frozen=True)
class EventRow:
    """An outbox row with its tenant's code: what a CloudEvent is made of."""

    tenant: str
    tenant_id: int
    id: int
    xid: int
    event_id: uuid.UUID
    type: str
    source: str
    subject: str
    aggregate: str
    aggregate_id: str
    occurred_at: datetime
    data: dict[str, Any]


@dataclass(frozen=True)
class KafkaRecord:
    """What the relay hands the producer: key, value and headers."""

    key: bytes
    value: bytes
    headers: list[tuple[str, str | bytes | None]]


class InvalidCloudEventError(ValueError):
    """A message is not a structured-mode CloudEvent we accept."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def dataschema(event_type: str, version: int = 1) -> str:
    """The URL of the JSON Schema of ``event_type``'s data (docs/events.md holds them)."""
    return f"{SCHEMA_BASE}{event_type}/v{version}.json"


def kafka_key(row: EventRow) -> str:
    """``{tenant}/{aggregate}/{id}``: one aggregate's events share a partition, so an order."""
    return f"{row.tenant}/{row.aggregate}/{row.aggregate_id}"


def to_cloudevent(row: EventRow) -> dict[str, Any]:
    """The structured-mode CloudEvent of an outbox row."""
    return {
        "specversion": SPEC_VERSION,
        "id": str(row.event_id),
        "source": row.source,
        "type": row.type,
        "subject": row.subject,
        "time": row.occurred_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "datacontenttype": DATA_CONTENT_TYPE,
        "dataschema": dataschema(row.type),
        "tenant": row.tenant,
        "data": row.data,
    }


def to_record(row: EventRow) -> KafkaRecord:
    """The Kafka record of an outbox row: the CloudEvent as value, id and type as headers."""
    event = to_cloudevent(row)
    return KafkaRecord(
        key=kafka_key(row).encode(),
        value=json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode(),
        headers=[
            ("ce_id", event["id"].encode()),
            ("ce_type", row.type.encode()),
            ("content-type", CONTENT_TYPE.encode()),
        ],
    )


def parse(value: bytes | None, *, expected_type: str) -> dict[str, Any]:
    """A structured-mode CloudEvent of ``expected_type`` with a ``tenant`` and object data."""
    if not value:
        raise InvalidCloudEventError("malformed", "the message has no value")
    try:
        event = json.loads(value)
    except (ValueError, RecursionError):  # nested past the parser's depth: not JSON either
        raise InvalidCloudEventError("malformed", "the value is not JSON") from None
    if not isinstance(event, dict):
        raise InvalidCloudEventError("malformed", "the value is not a JSON object")
    missing = [name for name in _REQUIRED if not isinstance(event.get(name), str)]
    if missing:
        raise InvalidCloudEventError("malformed", f"missing attributes: {', '.join(missing)}")
    if event["specversion"] != SPEC_VERSION:
        raise InvalidCloudEventError("malformed", f"specversion {event['specversion']!r}")
    if event["type"] != expected_type:
        raise InvalidCloudEventError("unexpected-type", f"type {event['type']!r}")
    if not isinstance(event.get("tenant"), str) or not event["tenant"]:
        raise InvalidCloudEventError("unknown-tenant", "the tenant attribute is missing")
    if not isinstance(event.get("data"), dict):
        raise InvalidCloudEventError("invalid", "data is not a JSON object")
    return event
