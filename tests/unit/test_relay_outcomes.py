"""How the relay sorts a broker's answers: acknowledged, or left unpublished to retry.

The real broker of the other tests (tansu) accepts records of any size, so a refusal
reported through the delivery callback cannot be provoked there; this producer stands
in for a broker that refuses, and only for that. The refusal raised by ``produce``
itself, the one that parks a row, is tested against the real client and broker
(tests/integration/test_outbox_parking).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError

from wms.events.cloudevents import EventRow
from wms.events.relay import Relay

Callback = Callable[[KafkaError | None, Any], None]


class AnsweringProducer:
    """Answers each record through its delivery callback with the error chosen for its key."""

    def __init__(self, errors: dict[bytes, KafkaError]) -> None:
        self.errors = errors
        self.pending: list[tuple[Callback, KafkaError | None]] = []

    def produce(self, topic: str, *, key: bytes, on_delivery: Callback, **_: Any) -> None:
        self.pending.append((on_delivery, self.errors.get(key)))

    def poll(self, _timeout: float) -> int:
        answered, self.pending = self.pending, []
        for callback, error in answered:
            callback(error, None)
        return len(answered)


def row(number: int, aggregate_id: str) -> EventRow:
    return EventRow(
        tenant="acme",
        tenant_id=1,
        id=number,
        xid=100 + number,
        event_id=uuid.uuid4(),
        type="wms.test.sequenced",
        source="/wms/local/-",
        subject=f"test/{aggregate_id}",
        aggregate="test",
        aggregate_id=aggregate_id,
        occurred_at=datetime.now(UTC),
        data={"seq": number},
    )


def test_what_the_broker_refuses_is_retried_not_parked() -> None:
    too_large = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE)
    not_allowed = KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    producer = AnsweringProducer({b"acme/test/big": too_large, b"acme/test/denied": not_allowed})
    relay = Relay(admin_url="unused", producer=producer, stop=asyncio.Event())  # type: ignore[arg-type]
    rows = [row(1, "a"), row(2, "big"), row(3, "a"), row(4, "denied")]

    delivered, refused = asyncio.run(relay._deliver(rows))

    assert [r.id for r in delivered] == [1, 3]
    # The broker refuses whole batches (librdkafka does not split them): a "too large"
    # from it may name healthy events, so rows 2 and 4 stay unpublished, sent again by
    # the next batch, and nothing is parked.
    assert refused == []
