"""The pure product rules: units, barcodes, conversion to base units, import duplicates."""

from __future__ import annotations

import pytest

from wms.domain.errors import FieldError
from wms.domain.products import (
    MAX_BASE_QUANTITY,
    BarcodeClaim,
    BarcodeOwner,
    Hold,
    InvalidProductError,
    Product,
    Rewrite,
    Uom,
    check_product,
    duplicate_claims,
    duplicate_skus,
    foreign_claims,
    held_changes,
    product_errors,
    to_base_quantity,
)

CASE = Uom("CASE", 12, ("C1",))


def widget(**fields: object) -> Product:
    """A valid product, changed by ``fields``."""
    return Product(sku="SKU-1", description="Widget", barcodes=("B1",), uoms=(CASE,)).changed(
        fields
    )


def test_a_product_with_distinct_units_and_barcodes_is_valid() -> None:
    assert product_errors(widget()) == []
    assert check_product(widget()) == widget()


def test_a_unit_may_not_repeat_the_base_unit() -> None:
    errors = product_errors(widget(uoms=(Uom("EA", 2),)))

    assert errors == [("/uoms/0/code", "must differ from the base unit EA")]


def test_a_unit_may_not_be_declared_twice() -> None:
    errors = product_errors(widget(uoms=(CASE, Uom("PAL", 480), Uom("CASE", 6))))

    assert [field for field, _ in errors] == ["/uoms/2/code"]


def test_a_unit_factor_below_one_is_refused() -> None:
    assert [f for f, _ in product_errors(widget(uoms=(Uom("CASE", 0),)))] == ["/uoms/0/factor"]


def test_a_barcode_may_not_name_both_the_product_and_one_of_its_units() -> None:
    errors = product_errors(widget(barcodes=("B1", "C1")))

    assert [field for field, _ in errors] == ["/uoms/0/barcodes/0"]


def test_expiry_tracking_requires_lot_tracking() -> None:
    assert [f for f, _ in product_errors(widget(expiry_tracked=True))] == ["/expiry_tracked"]
    assert product_errors(widget(expiry_tracked=True, lot_tracked=True)) == []


def test_a_product_without_description_is_invalid() -> None:
    assert product_errors(Product(sku="SKU-1", description="")) == [("/description", "is required")]


def test_check_product_reports_every_broken_rule_at_once() -> None:
    broken = widget(expiry_tracked=True, uoms=(Uom("EA", 0),))

    with pytest.raises(InvalidProductError) as caught:
        check_product(broken)

    fields = [field for field, _ in caught.value.errors]
    assert fields == ["/expiry_tracked", "/uoms/0/factor", "/uoms/0/code"]


def test_a_quantity_in_a_unit_converts_to_base_units() -> None:
    factors = widget().factors()

    assert to_base_quantity(3, "CASE", sku="SKU-1", factors=factors) == 36
    assert to_base_quantity(3, "EA", sku="SKU-1", factors=factors) == 3
    assert to_base_quantity(-2, "CASE", sku="SKU-1", factors=factors) == -24


@pytest.mark.parametrize("quantity", [10**9, -(10**9)])
def test_a_quantity_past_the_base_unit_ceiling_is_a_field_error(quantity: int) -> None:
    factors = {"EA": 1, "PAL": 1001}
    assert to_base_quantity(10**9, "PAL", sku="SKU-1", factors={"PAL": 1000}) == 10**12
    with pytest.raises(FieldError) as caught:
        to_base_quantity(quantity, "PAL", sku="SKU-1", factors=factors, field="/lines/0/uom")

    assert caught.value.errors[0][0] == "/lines/0/uom"
    assert f"at most {MAX_BASE_QUANTITY}" in caught.value.errors[0][1]


def test_a_quantity_without_unit_is_already_in_base_units() -> None:
    assert to_base_quantity(5, None, sku="SKU-1", factors={"EA": 1}) == 5


def test_an_unknown_unit_is_a_field_error_naming_the_known_units() -> None:
    with pytest.raises(FieldError) as caught:
        to_base_quantity(1, "PAL", sku="SKU-1", factors=widget().factors(), field="/lines/0/uom")

    assert caught.value.errors[0][0] == "/lines/0/uom"
    assert "CASE, EA" in caught.value.detail


def test_barcode_claims_point_at_product_and_unit_lists() -> None:
    product = widget()

    assert product.barcode_claims() == [("B1", "/barcodes/0"), ("C1", "/uoms/0/barcodes/0")]
    assert product.barcode_claims(product_barcodes=False) == [("C1", "/uoms/0/barcodes/0")]


def test_a_barcode_claimed_twice_is_reported_with_the_first_claim() -> None:
    first = BarcodeClaim("X", "A", 0, "/barcodes/0")
    second = BarcodeClaim("X", "B", 3, "/barcodes/1")

    assert duplicate_claims([first, BarcodeClaim("Y", "A", 0, "/barcodes/1"), second]) == [
        (second, first)
    ]


def test_a_barcode_kept_by_another_product_is_foreign() -> None:
    claim = BarcodeClaim("X", "B", 0, "/barcodes/0")
    owners = {"X": BarcodeOwner("A", None)}

    assert foreign_claims([claim], owners, {}) == [(claim, owners["X"])]


def test_a_barcode_released_by_its_owner_in_the_same_request_is_free() -> None:
    claim = BarcodeClaim("X", "B", 1, "/barcodes/0")
    product_barcode = {"X": BarcodeOwner("A", None)}
    unit_barcode = {"X": BarcodeOwner("A", "CASE")}

    assert foreign_claims([claim], product_barcode, {"A": Rewrite(True, False)}) == []
    assert foreign_claims([claim], unit_barcode, {"A": Rewrite(True, False)}) != []
    assert foreign_claims([claim], unit_barcode, {"A": Rewrite(False, True)}) == []


def test_a_products_own_barcode_is_left_to_the_product_rules() -> None:
    claim = BarcodeClaim("X", "A", 0, "/uoms/0/barcodes/0")

    assert foreign_claims([claim], {"X": BarcodeOwner("A", None)}, {}) == []


def test_repeated_skus_are_reported_with_the_first_row() -> None:
    assert duplicate_skus(["A", "B", "A", "A"]) == [(2, 0), (3, 0)]


def test_the_order_of_lists_does_not_change_a_products_normal_form() -> None:
    one = widget(barcodes=("B2", "B1"), uoms=(Uom("PAL", 480), Uom("CASE", 12, ("C2", "C1"))))
    other = widget(barcodes=("B1", "B2"), uoms=(Uom("CASE", 12, ("C1", "C2")), Uom("PAL", 480)))

    assert one != other
    assert one.normalised() == other.normalised()


def test_lot_tracking_changes_only_while_nothing_stored_under_a_lot_style_holds_it() -> None:
    # Open order lines naming a lot and counts awaiting approval did not hold it.
    tracked = widget(lot_tracked=True)
    assert held_changes(widget(), tracked, {Hold.ORDER_LINE, Hold.ASN_LINE}) == []
    assert [p for p, _ in held_changes(widget(), tracked, {Hold.COUNT})] == ["/lot_tracked"]
    assert held_changes(tracked, widget(), {Hold.ORDER_LINE}) == []
    ((pointer, message),) = held_changes(tracked, widget(), {Hold.LOT_ORDER_LINE})
    assert pointer == "/lot_tracked"
    assert "an open order line naming a lot" in message


def test_the_base_unit_changes_only_while_no_quantity_is_counted_in_it() -> None:
    # Changing it under 24 EA on hand made them 24 cases.
    in_cases = widget(base_uom="CS", uoms=())
    for hold in (Hold.STOCK, Hold.TASK, Hold.COUNT, Hold.ORDER_LINE, Hold.ASN_LINE):
        assert [p for p, _ in held_changes(widget(), in_cases, {hold})] == ["/base_uom"]
    assert held_changes(widget(), in_cases, set()) == []
    assert held_changes(widget(), widget(uoms=(Uom("CASE", 24),)), {Hold.STOCK}) == []
