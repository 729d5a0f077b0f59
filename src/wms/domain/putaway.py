"""Where received stock goes: the putaway rules (pure, no I/O).

The warehouse's rules are tried in order; the first whose criteria all match the
product (a rule naming none matches everything) names the zone. Within that zone a
storage or pick location already holding the same product and lot is preferred, then
the lowest pick sequence. A location must have room for the task counting the units
(and, when both are known, the volume and weight) already promised to open tasks; when
the rule forbids mixed lots, a location holding another lot of the product is skipped.
When the zone has no room, any active storage location with room will do (still without
mixing lots if the matched rule forbids it); when none has, there is no suggestion.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from wms.domain.inventory import LocationUnavailableError

RULE_ZONE_TYPES = frozenset({"storage", "pick"})
FALLBACK_TYPES = frozenset({"storage"})
ZERO = Decimal(0)


@dataclass(frozen=True)
class Rule:
    """One putaway rule: stock matching every named criterion goes to ``zone``."""

    zone: str
    sku: str | None = None
    category: str | None = None
    velocity_class: str | None = None
    allow_mixed_lots: bool = False


@dataclass(frozen=True)
class Item:
    """What is put away: the product's attributes and the task's lot."""

    product_id: int
    sku: str
    lot_code: str = ""
    category: str | None = None
    velocity_class: str | None = None
    unit_volume_l: Decimal | None = None
    unit_weight_kg: Decimal | None = None


@dataclass(frozen=True)
class Load:
    """Units, and the volume and weight of those units whose dimensions are known."""

    units: int = 0
    volume_l: Decimal = ZERO
    weight_kg: Decimal = ZERO

    def __add__(self, other: Load) -> Load:
        return Load(
            self.units + other.units,
            self.volume_l + other.volume_l,
            self.weight_kg + other.weight_kg,
        )

    @staticmethod
    def of(item: Item, quantity: int) -> Load:
        """The load of ``quantity`` units of ``item`` (volume/weight 0 when unknown)."""
        return Load(
            quantity,
            (item.unit_volume_l or ZERO) * quantity,
            (item.unit_weight_kg or ZERO) * quantity,
        )


@dataclass(frozen=True)
class Candidate:
    """A location that might take the stock, with what it stores and is promised.

    ``holds`` are the (product, lot) pairs stored there or promised by open tasks.
    """

    id: int
    code: str
    zone: str | None
    type: str
    active: bool
    pick_sequence: int
    capacity_units: int | None = None
    capacity_volume_l: Decimal | None = None
    capacity_weight_kg: Decimal | None = None
    stored: Load = Load()
    promised: Load = Load()
    holds: frozenset[tuple[int, str]] = frozenset()

    def room_for(self, item: Item, quantity: int) -> bool:
        """True when stored + promised + this task stays within every known capacity."""
        # Each limit summed on its own (no Load built): this runs for every location a
        # suggestion looks at, thousands of times in a large receipt.
        stored, promised = self.stored, self.promised
        if (
            self.capacity_units is not None
            and stored.units + promised.units + quantity > self.capacity_units
        ):
            return False
        if (
            self.capacity_volume_l is not None
            and item.unit_volume_l is not None
            and stored.volume_l + promised.volume_l + item.unit_volume_l * quantity
            > self.capacity_volume_l
        ):
            return False
        return not (
            self.capacity_weight_kg is not None
            and item.unit_weight_kg is not None
            and stored.weight_kg + promised.weight_kg + item.unit_weight_kg * quantity
            > self.capacity_weight_kg
        )

    def mixes_lots(self, item: Item) -> bool:
        """True when the location holds another lot of the same product."""
        return any(
            product == item.product_id and lot != item.lot_code for product, lot in self.holds
        )

    def promise(self, item: Item, quantity: int) -> Candidate:
        """This location after an open task promised it ``quantity`` of ``item``."""
        return dataclasses.replace(
            self,
            promised=self.promised + Load.of(item, quantity),
            holds=self.holds | {(item.product_id, item.lot_code)},
        )


def matching_rule(rules: Sequence[Rule], item: Item) -> Rule | None:
    """The first rule whose named criteria all match the product."""
    for rule in rules:
        if (
            (rule.sku is None or rule.sku == item.sku)
            and (rule.category is None or rule.category == item.category)
            and (rule.velocity_class is None or rule.velocity_class == item.velocity_class)
        ):
            return rule
    return None


def suggest(
    rules: Sequence[Rule], candidates: Sequence[Candidate], item: Item, quantity: int
) -> Candidate | None:
    """The location to suggest for ``quantity`` of ``item``; None when nothing fits."""
    return Shelves(candidates).suggest(rules, item, quantity)


class Shelves:
    """A warehouse's candidate locations in suggestion order, kept current as tasks promise.

    A receipt suggests a location per line; scanning and filtering every location for
    each line made a 5,000-line receipt cost 5,000 × 5,000 checks. Here locations are
    sorted once by (pick sequence, id) and indexed by the (product, lot) pairs they hold,
    so a suggestion looks at holders of the item first, then walks the order only until
    the first location that fits: the same choice, far fewer checks.
    """

    def __init__(self, candidates: Iterable[Candidate]) -> None:
        self._by_id: dict[int, Candidate] = {}
        self._holders: dict[tuple[int, str], set[int]] = {}
        for candidate in candidates:
            self._by_id[candidate.id] = candidate
            for pair in candidate.holds:
                self._holders.setdefault(pair, set()).add(candidate.id)
        self._sort()

    def _sort(self) -> None:
        self._order = sorted(
            self._by_id, key=lambda i: (self._by_id[i].pick_sequence, self._by_id[i].id)
        )
        self._position = {location_id: n for n, location_id in enumerate(self._order)}

    def put(self, candidate: Candidate) -> None:
        """Add ``candidate``, or replace the location's figures (reloaded, or promised)."""
        old = self._by_id.get(candidate.id)
        self._by_id[candidate.id] = candidate
        if old is None or old.pick_sequence != candidate.pick_sequence:
            self._sort()  # rare: a promise keeps the location's place in the order
        # Only the pairs that changed: a promise adds one, and a location holds dozens.
        old_holds = frozenset() if old is None else old.holds
        for pair in old_holds - candidate.holds:
            self._holders[pair].discard(candidate.id)
        for pair in candidate.holds - old_holds:
            self._holders.setdefault(pair, set()).add(candidate.id)

    def get(self, location_id: int) -> Candidate:
        """The current figures of a location."""
        return self._by_id[location_id]

    def suggest(self, rules: Sequence[Rule], item: Item, quantity: int) -> Candidate | None:
        """The rules' choice for ``quantity`` of ``item``; None when nothing fits."""
        rule = matching_rule(rules, item)
        allow_mixed = rule.allow_mixed_lots if rule is not None else True

        def fits(place: Candidate, types: frozenset[str]) -> bool:
            return (
                place.active
                and place.type in types
                and place.room_for(item, quantity)
                and (allow_mixed or not place.mixes_lots(item))
            )

        def first(types: frozenset[str], zone: Rule | None) -> Candidate | None:
            holders = sorted(self._holders.get((item.product_id, item.lot_code), ()),
                             key=self._position.__getitem__)  # fmt: skip
            # Chained, not copied: most suggestions end at a holder, and a tuple of every
            # location built per line cost a 5,000-line receipt 25 million copies.
            for location_id in itertools.chain(holders, self._order):
                place = self._by_id[location_id]
                if (zone is None or place.zone == zone.zone) and fits(place, types):
                    return place
            return None

        if rule is not None:
            chosen = first(RULE_ZONE_TYPES, rule)
            if chosen is not None:
                return chosen
        return first(FALLBACK_TYPES, None)


def check_room(place: Candidate, item: Item, quantity: int) -> None:
    """Refuse a confirmation into an inactive location or one without room (409)."""
    if not place.active:
        raise LocationUnavailableError(f"location {place.code} is inactive", location=place.code)
    if not place.room_for(item, quantity):
        used = place.stored + place.promised
        raise LocationUnavailableError(
            f"location {place.code} holds {place.stored.units} and is promised "
            f"{place.promised.units} unit(s); {quantity} more do not fit",
            location=place.code,
            capacity_units=place.capacity_units,
            stored_units=place.stored.units,
            promised_units=place.promised.units,
            used_units=used.units,
            requested=quantity,
        )
