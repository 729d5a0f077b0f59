"""confluent-kafka clients configured the way the worker needs them."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Consumer, KafkaError, Producer

from wms.events import metrics

INTAKE_GROUP = "wms-order-intake"


def _on_error(err: KafkaError) -> None:
    # Called from the client's poll: broker-wide trouble, not one message's failure.
    if err.code() in {KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT}:
        metrics.KAFKA_UP.set(0)
    metrics.PUBLISH_ERRORS.labels(kind=err.name()).inc()


def producer(brokers: str, **overrides: Any) -> Producer:
    """An idempotent producer (acks=all, no reordering on retry) that retries forever.

    ``message.timeout.ms`` = 0 keeps a message queued while the broker is away instead
    of failing it, so a later event of the same key can never overtake it.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": brokers,
        "enable.idempotence": True,
        "acks": "all",
        "message.timeout.ms": 0,
        "linger.ms": 5,
        "compression.type": "none",
        "error_cb": _on_error,
        "client.id": "wms-worker",
    }
    config.update(overrides)
    return Producer(config)


def consumer(brokers: str, group: str = INTAKE_GROUP, **overrides: Any) -> Consumer:
    """A consumer committing only offsets the worker stored, after the database committed.

    Offsets are stored by hand once a message is done and committed in the background
    (and on close): the at-least-once pattern, without a broker round trip per message.
    """
    config: dict[str, Any] = {
        "bootstrap.servers": brokers,
        "group.id": group,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 500,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Short sessions make a dead worker's partitions move quickly.
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 1000,
        "max.poll.interval.ms": 300000,
        "client.id": "wms-worker",
    }
    config.update(overrides)
    return Consumer(config)
