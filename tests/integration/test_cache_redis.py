"""Product and location lookups through a real Redis: tenant-scoped, invalidated, optional."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from tests.conftest import ApiClient, TenantKeys
from tests.integration.kafka_fixtures import RedisServer
from wms.app import create_app
from wms.config import Settings
from wms.domain.roles import Role


@pytest.fixture
def redis_client_app(settings: Settings, redis_server: RedisServer) -> Iterator[TestClient]:
    with TestClient(
        create_app(settings.model_copy(update={"redis_url": redis_server.url})),
        raise_server_exceptions=False,
    ) as client:
        yield client


def setup_tenant(api: ApiClient, *, lot_tracked: bool) -> None:
    for path, body in [
        ("/warehouses", {"code": "SP1", "name": "S", "timezone": "UTC"}),
        ("/warehouses/SP1/locations", {"code": "A-01", "type": "storage"}),
        ("/products", {"sku": "SKU-1", "description": "W", "lot_tracked": lot_tracked}),
    ]:
        response = api.post(path, json=body)
        assert response.status_code == 201, response.text


def adjust(api: ApiClient, **extra: object) -> int:
    body = {"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "quantity": 1,
            "reason": "found", **extra}  # fmt: skip
    return api.post("/inventory/adjustments", json=body).status_code


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_two_tenants_with_one_sku_never_see_each_others_product_even_without_redis(
    redis_client_app: TestClient,
    make_tenant: Callable[[], TenantKeys],
    redis_server: RedisServer,
) -> None:
    plain, lotted = make_tenant(), make_tenant()
    plain_api = ApiClient(redis_client_app, plain.keys[Role.ADMIN])
    lotted_api = ApiClient(redis_client_app, lotted.keys[Role.ADMIN])
    setup_tenant(plain_api, lot_tracked=False)
    setup_tenant(lotted_api, lot_tracked=True)
    hits_before = sample("wms_cache_hits_total", kind="product")
    for _ in range(3):
        assert adjust(plain_api) == 201  # no lot needed for this tenant's SKU-1
        assert adjust(lotted_api) == 422  # this tenant's SKU-1 needs a lot
        assert adjust(lotted_api, lot="L1") == 201
    assert sample("wms_cache_hits_total", kind="product") > hits_before
    keys = redis.Redis.from_url(redis_server.url).keys("wms:*")
    tenants = {key.decode().split(":")[1] for key in keys}
    assert tenants == {str(plain.tenant_id), str(lotted.tenant_id)}

    # A unit added to the product is seen at once: the cached product was invalidated.
    assert adjust(plain_api, uom="CASE") == 422
    patched = plain_api.patch("/products/SKU-1", json={"uoms": [{"code": "CASE", "factor": 12}]})
    assert patched.status_code == 200, patched.text
    assert adjust(plain_api, uom="CASE") == 201

    redis_server.stop()
    for _ in range(2):
        assert adjust(plain_api) == 201
        assert adjust(lotted_api) == 422
        assert adjust(lotted_api, lot="L1") == 201
    assert sample("wms_cache_redis_up") == 0
    on_hand = plain_api.get("/inventory", params={"warehouse": "SP1", "sku": "SKU-1"}).json()
    assert sum(item["on_hand"] for item in on_hand["items"]) == 3 + 12 + 2


def test_without_redis_the_in_process_cache_is_invalidated_on_change(
    api: ApiClient, tmp_path: Path
) -> None:
    setup_tenant(api, lot_tracked=False)
    assert adjust(api) == 201
    assert api.patch("/warehouses/SP1/locations/A-01", json={"active": False}).status_code == 200
    assert adjust(api) == 409  # the inactive location, not a stale cached copy


def receive_by_barcode(api: ApiClient, asn: int, barcode: str) -> tuple[int, str | None]:
    response = api.post(
        f"/asns/{asn}/receipts",
        json={"location": "DOCK-1", "barcode": barcode, "quantity": 1, "condition": "good"},
    )
    lines = response.json().get("lines") if response.status_code == 201 else None
    return response.status_code, lines[0]["sku"] if lines else None


def test_barcode_lookups_are_cached_per_tenant_and_follow_a_barcode_that_moves(
    redis_client_app: TestClient, make_tenant: Callable[[], TenantKeys]
) -> None:
    apis = [ApiClient(redis_client_app, make_tenant().keys[Role.ADMIN]) for _ in range(2)]
    asns = []
    for api, owner in zip(apis, ("SKU-1", "SKU-2"), strict=True):
        for path, body in [
            ("/warehouses", {"code": "SP1", "name": "S", "timezone": "UTC"}),
            ("/warehouses/SP1/locations", {"code": "DOCK-1", "type": "dock"}),
            ("/products", {"sku": "SKU-1", "description": "W"}),
            ("/products", {"sku": "SKU-2", "description": "B"}),
            ("/products/" + owner, {"barcodes": ["7890000000001"]}),
            ("/asns", {"reference": "PO-1", "warehouse": "SP1", "supplier": "S",
                       "lines": [{"sku": "SKU-1", "quantity": 50},
                                 {"sku": "SKU-2", "quantity": 50}]}),
        ]:  # fmt: skip
            response = api.patch(path, json=body) if body.keys() == {"barcodes"} else None
            response = response or api.post(path, json=body)
            assert response.status_code < 300, response.text
        asns.append(response.json()["id"])
    hits = sample("wms_cache_hits_total", kind="barcode")
    for _ in range(3):  # one barcode, two tenants, two owners: never crossed
        assert receive_by_barcode(apis[0], asns[0], "7890000000001") == (201, "SKU-1")
        assert receive_by_barcode(apis[1], asns[1], "7890000000001") == (201, "SKU-2")
    assert sample("wms_cache_hits_total", kind="barcode") >= hits + 4

    # The barcode leaves SKU-1 and goes to SKU-2 of the first tenant: the cache follows.
    assert apis[0].patch("/products/SKU-1", json={"barcodes": []}).status_code == 200
    assert receive_by_barcode(apis[0], asns[0], "7890000000001") == (422, None)
    moved = apis[0].patch("/products/SKU-2", json={"barcodes": ["7890000000001"]})
    assert moved.status_code == 200, moved.text
    assert receive_by_barcode(apis[0], asns[0], "7890000000001") == (201, "SKU-2")
    assert receive_by_barcode(apis[1], asns[1], "7890000000001") == (201, "SKU-2")
