"""The putaway rules: zone by the first matching rule, preference, capacity, lots."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wms.domain.inventory import LocationUnavailableError
from wms.domain.putaway import (
    FALLBACK_TYPES,
    RULE_ZONE_TYPES,
    Candidate,
    Item,
    Load,
    Rule,
    Shelves,
    check_room,
    matching_rule,
    suggest,
)

ITEM = Item(product_id=1, sku="SKU-1", lot_code="L1", category="dairy", velocity_class="A")


def place(id: int, zone: str | None = "A", **fields: object) -> Candidate:
    values: dict[str, object] = {"code": f"LOC-{id}", "zone": zone, "type": "storage",
                                 "active": True, "pick_sequence": id * 10, **fields}  # fmt: skip
    return Candidate(id=id, **values)  # type: ignore[arg-type]


def test_the_first_rule_whose_criteria_all_match_names_the_zone() -> None:
    rules = [
        Rule(zone="X", sku="OTHER"),
        Rule(zone="Y", category="dairy", velocity_class="B"),
        Rule(zone="F", velocity_class="A"),
        Rule(zone="Z"),
    ]
    assert matching_rule(rules, ITEM) == rules[2]
    assert matching_rule([Rule(zone="Z")], ITEM) == Rule(zone="Z")  # no criteria: everything
    assert matching_rule([Rule(zone="X", sku="OTHER")], ITEM) is None


def test_the_rule_zone_wins_over_a_lower_pick_sequence_elsewhere() -> None:
    chosen = suggest([Rule(zone="F")], [place(1, zone="A"), place(2, zone="F")], ITEM, 5)
    assert chosen is not None
    assert chosen.id == 2


def test_a_location_holding_the_same_product_and_lot_is_preferred_then_pick_sequence() -> None:
    places = [place(1), place(2, holds=frozenset({(1, "L1")})), place(3)]
    chosen = suggest([Rule(zone="A", allow_mixed_lots=True)], places, ITEM, 5)
    assert chosen is not None
    assert chosen.id == 2
    other_lot = [place(1), place(2, holds=frozenset({(1, "L9")}))]
    chosen = suggest([Rule(zone="A", allow_mixed_lots=True)], other_lot, ITEM, 5)
    assert chosen is not None
    assert chosen.id == 1


def test_capacity_counts_units_promised_to_open_tasks() -> None:
    full = place(1, capacity_units=10, stored=Load(4), promised=Load(4))
    roomy = place(2, capacity_units=10)
    chosen = suggest([Rule(zone="A")], [full, roomy], ITEM, 3)
    assert chosen is not None
    assert chosen.id == 2
    assert suggest([Rule(zone="A")], [full], ITEM, 2) == full


def test_volume_and_weight_limit_only_when_both_sides_are_known() -> None:
    bulky = Item(product_id=1, sku="S", unit_volume_l=Decimal(2), unit_weight_kg=Decimal(5))
    small = place(1, capacity_volume_l=Decimal(10), capacity_weight_kg=Decimal(100))
    assert suggest([], [small], bulky, 5) == small
    assert suggest([], [small], bulky, 6) is None  # 12 litres
    light = place(2, capacity_weight_kg=Decimal(20))
    assert suggest([], [light], bulky, 5) is None  # 25 kg
    unknown = Item(product_id=1, sku="S")
    assert suggest([], [small], unknown, 1000) == small


def test_a_rule_forbidding_mixed_lots_skips_locations_holding_another_lot() -> None:
    mixed = place(1, holds=frozenset({(1, "L2")}))
    other_product = place(2, holds=frozenset({(7, "X")}))
    chosen = suggest([Rule(zone="A")], [mixed, other_product], ITEM, 1)
    assert chosen == other_product
    allowed = suggest([Rule(zone="A", allow_mixed_lots=True)], [mixed, other_product], ITEM, 1)
    assert allowed == mixed


def test_without_room_in_the_zone_any_active_storage_location_will_do() -> None:
    places = [
        place(1, zone="F", capacity_units=1),
        place(2, zone="B", type="pick"),
        place(3, zone="C", active=False),
        place(4, zone=None),
    ]
    chosen = suggest([Rule(zone="F")], places, ITEM, 5)
    assert chosen is not None
    assert chosen.id == 4
    # The rule zone may be a pick zone; the fallback only takes storage.
    chosen = suggest([Rule(zone="B")], places, ITEM, 5)
    assert chosen is not None
    assert chosen.id == 2


def test_no_suggestion_when_nothing_has_room() -> None:
    places = [place(1, capacity_units=3), place(2, type="dock"), place(3, active=False)]
    assert suggest([Rule(zone="A")], places, ITEM, 5) is None
    assert suggest([], [], ITEM, 1) is None


def test_a_confirmation_into_a_full_or_inactive_location_is_refused() -> None:
    with pytest.raises(LocationUnavailableError) as full:
        check_room(place(1, capacity_units=10, stored=Load(5), promised=Load(3)), ITEM, 3)
    assert full.value.extensions["promised_units"] == 3
    with pytest.raises(LocationUnavailableError):
        check_room(place(1, active=False), ITEM, 1)
    check_room(place(1, capacity_units=10, stored=Load(5), promised=Load(3)), ITEM, 2)


candidates = st.lists(
    st.builds(
        lambda id, zone, kind, active, capacity, stored, promised, lot: place(
            id,
            zone=zone,
            type=kind,
            active=active,
            capacity_units=capacity,
            stored=Load(stored),
            promised=Load(promised),
            holds=frozenset() if lot is None else frozenset({(1, lot)}),
        ),
        st.integers(1, 1000),
        st.sampled_from(["A", "F", None]),
        st.sampled_from(["storage", "pick", "dock"]),
        st.booleans(),
        st.one_of(st.none(), st.integers(1, 60)),
        st.integers(0, 30),
        st.integers(0, 30),
        st.sampled_from([None, "L1", "L2"]),
    ),
    max_size=8,
    unique_by=lambda c: c.id,
)
rule_lists = st.lists(
    st.builds(
        Rule,
        zone=st.sampled_from(["A", "F", "Q"]),
        velocity_class=st.sampled_from([None, "A", "B"]),
        allow_mixed_lots=st.booleans(),
    ),
    max_size=3,
)


@given(rule_lists, candidates, st.integers(1, 40))
def test_a_suggestion_always_fits_and_never_mixes_lots_where_forbidden(
    rules: list[Rule], places: list[Candidate], quantity: int
) -> None:
    chosen = suggest(rules, places, ITEM, quantity)
    rule = matching_rule(rules, ITEM)
    forbid = rule is not None and not rule.allow_mixed_lots

    def eligible(c: Candidate) -> bool:
        return c.active and c.room_for(ITEM, quantity) and not (forbid and c.mixes_lots(ITEM))

    if chosen is None:
        assert not any(eligible(c) and c.type == "storage" for c in places)
        return
    assert eligible(chosen)
    assert chosen.capacity_units is None or (
        chosen.stored.units + chosen.promised.units + quantity <= chosen.capacity_units
    )
    in_zone = [c for c in places if rule and c.zone == rule.zone and c.type != "dock"]
    if any(eligible(c) for c in in_zone):
        assert rule is not None
        assert chosen.zone == rule.zone


@given(rule_lists, candidates, st.lists(st.integers(1, 20), max_size=6))
def test_promising_tasks_one_after_another_never_overfills_a_location(
    rules: list[Rule], places: list[Candidate], quantities: list[int]
) -> None:
    state = {c.id: c for c in places}
    for quantity in quantities:
        chosen = suggest(rules, list(state.values()), ITEM, quantity)
        if chosen is not None:
            state[chosen.id] = chosen.promise(ITEM, quantity)
    for original in places:
        after = state[original.id]
        added = after.promised.units - original.promised.units
        if added and after.capacity_units is not None:
            assert after.stored.units + after.promised.units <= after.capacity_units


def scan_every_location(
    rules: list[Rule], candidates: list[Candidate], item: Item, quantity: int
) -> Candidate | None:
    """The rules as first written: filter every location, then take the best (a reference)."""
    rule = matching_rule(rules, item)
    allow_mixed = rule.allow_mixed_lots if rule is not None else True

    def fits(c: Candidate, types: frozenset[str]) -> bool:
        return (c.active and c.type in types and c.room_for(item, quantity)
                and (allow_mixed or not c.mixes_lots(item)))  # fmt: skip

    def best(places: list[Candidate]) -> Candidate | None:
        mine = (item.product_id, item.lot_code)
        return min(places, key=lambda c: (mine not in c.holds, c.pick_sequence, c.id),
                   default=None)  # fmt: skip

    if rule is not None:
        chosen = best([c for c in candidates if c.zone == rule.zone and fits(c, RULE_ZONE_TYPES)])
        if chosen is not None:
            return chosen
    return best([c for c in candidates if fits(c, FALLBACK_TYPES)])


@given(
    st.lists(
        st.tuples(st.sampled_from(["A", "B", None]), st.sampled_from(["storage", "pick", "dock"]),
                  st.booleans(), st.integers(0, 5), st.one_of(st.none(), st.integers(0, 12)),
                  st.sets(st.tuples(st.integers(1, 3), st.sampled_from(["", "L1", "L2"])),
                          max_size=2)),
        max_size=12,
    ),
    st.lists(st.tuples(st.integers(1, 3), st.sampled_from(["", "L1", "L2"]), st.integers(1, 6)),
             max_size=15),
    st.booleans(),
)  # fmt: skip
def test_shelves_choose_as_a_scan_of_every_location_would_line_after_line(
    layout: list[tuple[str | None, str, bool, int, int | None, set[tuple[int, str]]]],
    lines: list[tuple[int, str, int]],
    mixed: bool,
) -> None:
    candidates = [
        place(n + 1, zone=zone, type=kind, active=active, pick_sequence=sequence,
              capacity_units=capacity, holds=frozenset(holds))
        for n, (zone, kind, active, sequence, capacity, holds) in enumerate(layout)
    ]  # fmt: skip
    rules = [Rule(zone="A", velocity_class="A", allow_mixed_lots=mixed), Rule(zone="B")]
    shelves, reference = Shelves(candidates), {c.id: c for c in candidates}
    for product, lot, quantity in lines:
        item = Item(product_id=product, sku=f"SKU-{product}", lot_code=lot,
                    velocity_class="A" if product == 1 else "B")  # fmt: skip
        expected = scan_every_location(rules, list(reference.values()), item, quantity)
        assert shelves.suggest(rules, item, quantity) == expected
        if expected is not None:
            promised = expected.promise(item, quantity)
            shelves.put(promised)
            reference[promised.id] = promised


@given(
    st.lists(
        st.tuples(st.integers(1, 8), st.sampled_from(["A", "B"]), st.integers(0, 5),
                  st.one_of(st.none(), st.integers(0, 12)),
                  st.sets(st.tuples(st.integers(1, 3), st.sampled_from(["", "L1"])), max_size=2),
                  st.integers(1, 3), st.sampled_from(["", "L1"]), st.integers(1, 6)),
        max_size=20,
    ),
)  # fmt: skip
def test_shelves_reloaded_or_given_new_locations_choose_as_a_scan_would(
    steps: list[tuple[int, str, int, int | None, set[tuple[int, str]], int, str, int]],
) -> None:
    """A put of fresh figures (another pick sequence, other holds, a location not seen
    before) leaves the shelves choosing as a scan of the same locations would."""
    rules = [Rule(zone="A", velocity_class="A"), Rule(zone="B")]
    shelves = Shelves([place(1, zone="A", capacity_units=4), place(2, zone="B")])
    reference = {c.id: c for c in (shelves.get(1), shelves.get(2))}
    for location_id, zone, sequence, capacity, holds, product, lot, quantity in steps:
        fresh = place(location_id, zone=zone, pick_sequence=sequence, capacity_units=capacity,
                      holds=frozenset(holds))  # fmt: skip
        shelves.put(fresh)
        reference[fresh.id] = fresh
        item = Item(product_id=product, sku=f"SKU-{product}", lot_code=lot,
                    velocity_class="A" if product == 1 else "B")  # fmt: skip
        assert shelves.suggest(rules, item, quantity) == scan_every_location(
            rules, list(reference.values()), item, quantity
        )
