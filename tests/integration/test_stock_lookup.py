"""Stock looked up by a scanned barcode: the product's or one of its units'."""

from __future__ import annotations

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import build_world
from tests.integration.test_inventory import adjust


def test_stock_by_barcode_finds_the_products_balances_and_nothing_for_unknown_codes(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    build_world(api, tenant, database_url)
    assert adjust(api, quantity=7).status_code == 201
    assert adjust(api, location="A-02", quantity=3).status_code == 201
    patched = api.patch(
        "/products/SKU-1",
        json={"barcodes": ["7891000000017"],
              "uoms": [{"code": "CASE", "factor": 12, "barcodes": ["17891000000014"]}]},
    )  # fmt: skip
    assert patched.status_code == 200, patched.text

    def lookup(**params: str) -> list[tuple[str, str, int]]:
        answer = api.get("/inventory", params=params)
        assert answer.status_code == 200, answer.text
        return sorted((i["location"], i["sku"], i["on_hand"]) for i in answer.json()["items"])

    both = [("A-01", "SKU-1", 7), ("A-02", "SKU-1", 3)]
    assert lookup(barcode="7891000000017") == both
    assert lookup(barcode="17891000000014") == both  # the case's barcode: same product
    assert lookup(barcode="17891000000014", location="A-02") == [("A-02", "SKU-1", 3)]
    assert lookup(barcode="7891000000017", sku="LOT-1") == []  # contradicting filters
    assert lookup(barcode="0000000000000") == []
    bad = api.get("/inventory", params={"barcode": "x\u0000y"})
    assert bad.status_code == 422
