"""Prometheus metrics of the worker: outbox relay, order intake, broker health."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_BACKLOG = Gauge("wms_outbox_backlog", "Outbox events not yet published to Kafka.")
OUTBOX_OLDEST_AGE = Gauge(
    "wms_outbox_oldest_unpublished_age_seconds",
    "Age of the oldest unpublished outbox event (0 when none).",
)
OUTBOX_PARKED = Gauge(
    "wms_outbox_parked_events",
    "Outbox events Kafka refused for good, set aside until requeued (wms-server events).",
)
PARKED = Counter(
    "wms_outbox_events_parked_total",
    "Outbox events the relay set aside, by Kafka's error.",
    ["kind"],
)
PUBLISH_LATENCY = Histogram(
    "wms_outbox_publish_latency_seconds",
    "Time from an event's transaction to Kafka's acknowledgement.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
PUBLISHED = Counter("wms_outbox_published_total", "Outbox events acknowledged by Kafka.")
PUBLISH_ERRORS = Counter(
    "wms_outbox_publish_errors_total", "Errors while publishing events, by kind.", ["kind"]
)
KAFKA_UP = Gauge("wms_kafka_up", "1 while the worker reaches a Kafka broker, else 0.")
SHARDS_HELD = Gauge("wms_outbox_shards_held", "Relay key shards this worker holds a lease on.")
PRUNED = Counter("wms_outbox_pruned_total", "Outbox events removed by retention.")
IDEMPOTENCY_PURGED = Counter(
    "wms_idempotency_keys_purged_total", "Idempotency records removed after their 24 hours."
)
INTAKE = Counter(
    "wms_order_intake_total", "Inbound order messages handled, by outcome.", ["outcome"]
)
INTAKE_RETRIES = Counter(
    "wms_order_intake_retries_total", "Transient database errors retried by the order intake."
)
CONSUMER_LAG = Gauge(
    "kafka_consumer_lag",
    "Messages between the group's position and the partition's high watermark.",
    ["topic", "partition", "group"],
)
