"""The CloudEvents mapping of outbox rows and the intake's envelope checks (pure)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest

from wms.events.cloudevents import (
    EventRow,
    InvalidCloudEventError,
    dataschema,
    parse,
    to_record,
)

ROW = EventRow(
    tenant="acme", tenant_id=7, id=3, xid=1234, event_id=uuid.UUID(int=5),
    type="wms.order.received", source="/wms/br/SP1", subject="order/SO-1", aggregate="order",
    aggregate_id="SO-1", occurred_at=datetime(2026, 11, 29, 12, 0, tzinfo=UTC),
    data={"number": "SO-1"},
)  # fmt: skip


def test_a_row_becomes_a_structured_cloudevent_keyed_by_tenant_aggregate_and_id() -> None:
    record = to_record(ROW)
    event = json.loads(record.value)
    assert record.key == b"acme/order/SO-1"
    assert dict(record.headers)["ce_id"] == str(ROW.event_id).encode()
    assert dict(record.headers)["ce_type"] == b"wms.order.received"
    assert event == {
        "specversion": "1.0", "id": str(ROW.event_id), "source": "/wms/br/SP1",
        "type": "wms.order.received", "subject": "order/SO-1", "time": "2026-11-29T12:00:00Z",
        "datacontenttype": "application/json", "dataschema": dataschema("wms.order.received"),
        "tenant": "acme", "data": {"number": "SO-1"},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"", "malformed"),
        (b"{not json", "malformed"),
        (b"[]", "malformed"),
        (json.dumps({"specversion": "1.0", "id": "1", "source": "/x"}).encode(), "malformed"),
        (json.dumps({"specversion": "1.0", "id": "1", "source": "/x", "type": "other",
                     "tenant": "t", "data": {}}).encode(), "unexpected-type"),
        (json.dumps({"specversion": "1.0", "id": "1", "source": "/x",
                     "type": "wms.order.create.requested", "data": {}}).encode(),
         "unknown-tenant"),
        (json.dumps({"specversion": "1.0", "id": "1", "source": "/x",
                     "type": "wms.order.create.requested", "tenant": "t", "data": 3}).encode(),
         "invalid"),
    ],
)  # fmt: skip
def test_an_unacceptable_intake_message_names_its_reason(value: bytes, reason: str) -> None:
    with pytest.raises(InvalidCloudEventError) as caught:
        parse(value, expected_type="wms.order.create.requested")
    assert caught.value.reason == reason
