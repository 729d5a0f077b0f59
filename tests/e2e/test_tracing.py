"""Tracing end to end: real server and worker processes export OTLP/HTTP to a receiver.

The receiver is a plain HTTP server decoding the OTLP protobuf, as a collector would;
spans must carry the caller's trace (``traceparent`` over HTTP and in Kafka headers).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.conftest import ApiClient, TenantKeys
from tests.e2e.conftest import Launch, server_env
from tests.e2e.test_rate_limit_shared import PEPPER, admin_key
from tests.e2e.test_worker_intake import request
from tests.e2e.test_worker_relay import order
from tests.e2e.worker_helpers import start_worker, wait_until
from tests.integration.kafka_fixtures import Broker
from wms.store.embedded import free_port

pytestmark = pytest.mark.slow
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN}-01"
# Export within a fraction of a second instead of the SDK's default 5 s.
FAST_EXPORT = {"OTEL_BSP_SCHEDULE_DELAY": "100"}


class Receiver:
    """Spans received on ``POST /v1/traces``, flattened to dicts."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.port = free_port()
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                export = ExportTraceServiceRequest.FromString(body)
                for resource in export.resource_spans:
                    service = {a.key: a.value.string_value for a in resource.resource.attributes}
                    for scope in resource.scope_spans:
                        for span in scope.spans:
                            received.append({
                                "service": service.get("service.name"),
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent": span.parent_span_id.hex(),
                                "kind": span.kind,
                                "attributes": {a.key: a.value for a in span.attributes},
                            })  # fmt: skip
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ancestors(self, span: dict[str, Any]) -> list[str]:
        """Span ids from ``span``'s parent up to the root of what was received."""
        by_id = {s["span_id"]: s for s in self.spans}
        chain, parent = [], span["parent"]
        while parent in by_id:
            chain.append(parent)
            parent = by_id[parent]["parent"]
        return [*chain, parent]

    def wait_for(
        self, found: Callable[[dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        """The first span ``found`` accepts, waiting for exports to arrive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for span in list(self.spans):
                if found(span):
                    return span
            time.sleep(0.1)
        raise AssertionError(f"no such span among {[s['name'] for s in self.spans]}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    otlp = Receiver()
    yield otlp
    otlp.server.shutdown()
    otlp.server.server_close()


def test_a_request_is_traced_through_its_database_transaction_and_its_log_line(
    launch: Launch, database_url: str, tmp_path: Path, receiver: Receiver
) -> None:
    key = admin_key(database_url, tmp_path)
    server = launch(server_env(
        tmp_path, DATABASE_URL=database_url, WMS_API_KEY_PEPPER=PEPPER,
        WMS_MIGRATE_ON_START="false", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, **FAST_EXPORT,
    ))  # fmt: skip
    server.wait_ready(timeout=60)
    answer = httpx.get(
        f"{server.base_url}/api/v1/warehouses",
        headers={"Authorization": f"Bearer {key}", "traceparent": TRACEPARENT},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text

    request_span = receiver.wait_for(
        lambda s: s["trace_id"] == TRACE_ID and s["name"] == "GET /api/v1/warehouses"
    )
    assert request_span["parent"] == PARENT_SPAN  # continues the caller's trace
    assert request_span["service"] == "wms-server"
    assert request_span["attributes"]["http.response.status_code"].int_value == 200
    transaction = receiver.wait_for(
        lambda s: s["trace_id"] == TRACE_ID and s["name"] == "db.transaction"
    )
    # FastAPI's own spans (dependencies, endpoint) may sit in between.
    assert request_span["span_id"] in receiver.ancestors(transaction)
    assert transaction["attributes"]["wms.db.read_only"].bool_value is True

    assert server.stop() == 0
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    (logged,) = [line for line in lines if line.get("message") == "request"
                 and line.get("path") == "/api/v1/warehouses"]  # fmt: skip
    assert (logged["trace_id"], logged["span_id"]) == (TRACE_ID, request_span["span_id"])


def test_the_worker_continues_a_producers_trace_and_hands_its_own_on_in_kafka_headers(
    launch: Launch,
    *,
    tmp_path: Path,
    database_url: str,
    api: ApiClient,
    tenant: TenantKeys,
    kafka_broker: Broker,
    receiver: Receiver,
) -> None:
    assert api.post("/warehouses", json={"code": "SP1", "name": "S", "timezone": "UTC"}).is_success
    assert api.post("/products", json={"sku": "SKU-1", "description": "W"}).is_success
    kafka_broker.produce_with_headers(
        "wms.orders.inbound",
        key=b"TR-1",
        value=request(tenant.code, order("TR-1")),
        headers=[("traceparent", TRACEPARENT.encode())],
    )
    worker = start_worker(
        launch, tmp_path, database_url, kafka_broker.url,
        OTEL_EXPORTER_OTLP_ENDPOINT=receiver.url, **FAST_EXPORT,
    )  # fmt: skip

    consumed = receiver.wait_for(lambda s: s["name"] == "wms.orders.inbound process")
    assert (consumed["trace_id"], consumed["parent"]) == (TRACE_ID, PARENT_SPAN)
    assert consumed["service"] == "wms-worker"
    assert consumed["attributes"]["wms.intake.outcome"].string_value == "created"
    receiver.wait_for(lambda s: s["name"] == "db.transaction" and s["trace_id"] == TRACE_ID)

    records = kafka_broker.read("wms.events", at_least=3)  # warehouse, product, order
    received = [r for r in records if r["headers"]["ce_type"] == "wms.order.received"]
    assert len(received) == 1
    _version, trace_id, span_id, _flags = received[0]["headers"]["traceparent"].split("-")
    publish = receiver.wait_for(lambda s: s["name"] == "wms.events publish"
                                and s["trace_id"] == trace_id)  # fmt: skip
    assert publish["span_id"] == span_id
    wait_until(lambda: worker.stop() == 0, 30)
