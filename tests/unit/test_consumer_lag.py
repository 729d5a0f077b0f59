"""``kafka_consumer_lag``: high watermark minus the group's committed offset, per partition.

The test broker (tansu) answers ListOffsets with a high watermark of 1 whatever the
partition holds, so the value cannot be checked end to end against it; the arithmetic
and the reporting are checked here with a consumer that answers like a Kafka broker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from prometheus_client import REGISTRY

from wms.events.intake import OrderIntake, partition_lag


@pytest.mark.parametrize(
    ("low", "high", "committed", "lag"),
    [
        (0, 100, 60, 40),  # 60 done of 100
        (0, 100, 100, 0),  # caught up
        (0, 100, -1001, 100),  # nothing committed yet: everything retained is lag
        (30, 100, -1001, 70),  # ... counted from the oldest retained message
        (0, 100, 120, 0),  # a committed offset ahead of a stale watermark is not negative
    ],
)
def test_partition_lag(low: int, high: int, committed: int, lag: int) -> None:
    assert partition_lag(low, high, committed=committed) == lag


class KafkaLikeConsumer:
    """Answers the three calls ``_report_lag`` makes, as a Kafka broker would."""

    def __init__(self, committed: dict[int, int], marks: dict[int, tuple[int, int]]) -> None:
        self._committed, self._marks = committed, marks

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition("wms.orders.inbound", p) for p in sorted(self._committed)]

    def committed(self, parts: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self._committed[tp.partition])
                for tp in parts]  # fmt: skip

    def get_watermark_offsets(self, tp: TopicPartition, **_: Any) -> tuple[int, int]:
        return self._marks[tp.partition]


def test_the_intake_reports_each_assigned_partitions_lag() -> None:
    consumer = KafkaLikeConsumer({0: 60, 1: -1001}, {0: (0, 100), 1: (5, 25)})
    intake = OrderIntake(
        consumer=consumer,  # type: ignore[arg-type]
        producer=None,  # type: ignore[arg-type]
        pool=None,  # type: ignore[arg-type]
        admin_url="",
        region="test",
        stop=asyncio.Event(),
        group="lag-test",
    )
    intake._report_lag()
    lag = {
        partition: REGISTRY.get_sample_value(
            "kafka_consumer_lag",
            {"topic": "wms.orders.inbound", "partition": partition, "group": "lag-test"},
        )
        for partition in ("0", "1")
    }
    assert lag == {"0": 40.0, "1": 20.0}
