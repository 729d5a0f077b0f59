"""Stock invariants under random command sequences and under real concurrency.

After every step: each balance equals opening + ledger sum, nothing is negative,
allocated never exceeds on hand, and the API's answers agree with a simple model.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import build_world
from tests.integration.test_inventory import ledger_matches_balances

LOCATIONS = ["A-01", "A-02", "P-01"]
STATUSES = ["available", "quarantine", "hold"]


def check_invariants(database_url: str) -> None:
    ledger_matches_balances(database_url)
    with psycopg.connect(database_url) as conn:
        bad = conn.execute(
            "SELECT count(*) FROM wms.inventory_balances "
            "WHERE on_hand < 0 OR allocated < 0 OR allocated > on_hand"
        ).fetchone()
    assert bad == (0,)


def new_product(database_url: str, tenant: TenantKeys) -> str:
    sku = f"H-{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO wms.products (tenant_id, sku, description) VALUES (%s, %s, 'x')",
            (tenant.tenant_id, sku),
        )
    return sku


def test_random_command_sequences_keep_every_invariant(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    build_world(api, tenant, database_url)

    class StockMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.sku = new_product(database_url, tenant)
            self.model: dict[tuple[str, str], int] = defaultdict(int)

        @rule(
            location=st.sampled_from(LOCATIONS),
            status=st.sampled_from(STATUSES),
            quantity=st.integers(-20, 30).filter(bool),
        )
        def adjust(self, location: str, status: str, quantity: int) -> None:
            response = api.post(
                "/inventory/adjustments",
                json={"warehouse": "SP1", "location": location, "sku": self.sku,
                      "quantity": quantity, "status": status,
                      "reason": "found" if quantity > 0 else "lost"},
            )  # fmt: skip
            self.expect(response, [((location, status), quantity)])

        @rule(
            source=st.sampled_from(LOCATIONS),
            destination=st.sampled_from(LOCATIONS),
            quantity=st.integers(1, 25),
        )
        def move(self, source: str, destination: str, quantity: int) -> None:
            response = api.post(
                "/inventory/moves",
                json={"warehouse": "SP1", "sku": self.sku, "from_location": source,
                      "to_location": destination, "quantity": quantity},
            )  # fmt: skip
            if source == destination:
                assert response.status_code == 422
                return
            self.expect(
                response,
                [((source, "available"), -quantity), ((destination, "available"), quantity)],
            )

        @rule(
            location=st.sampled_from(LOCATIONS),
            statuses=st.permutations(STATUSES),
            quantity=st.integers(1, 25),
        )
        def change_status(self, location: str, statuses: list[str], quantity: int) -> None:
            source, target = statuses[0], statuses[1]
            response = api.post(
                "/inventory/status-changes",
                json={"warehouse": "SP1", "location": location, "sku": self.sku,
                      "quantity": quantity, "from_status": source, "to_status": target},
            )  # fmt: skip
            self.expect(response, [((location, source), -quantity), ((location, target), quantity)])

        def expect(self, response: Any, deltas: list[tuple[tuple[str, str], int]]) -> None:
            short = [(key, -q) for key, q in deltas if q < 0 and self.model[key] < -q]
            if short:
                assert response.status_code == 409, response.text
                body = response.json()
                key, wanted = short[0]
                assert (body["available"], body["requested"]) == (self.model[key], wanted)
                return
            assert response.status_code == 201, response.text
            for key, quantity in deltas:
                self.model[key] += quantity

        @invariant()
        def balances_agree_with_ledger_and_model(self) -> None:
            check_invariants(database_url)
            items = api.get("/inventory", params={"sku": self.sku, "limit": 500}).json()["items"]
            seen = {(i["location"], i["status"]): i["on_hand"] for i in items}
            assert seen == {key: value for key, value in self.model.items() if value > 0}

    run_state_machine_as_test(
        StockMachine,
        settings=settings(
            max_examples=8,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


def test_fifty_concurrent_commands_in_opposite_directions_lose_nothing(
    api: ApiClient, tenant: TenantKeys, database_url: str
) -> None:
    build_world(api, tenant, database_url)
    start = 40
    for location in LOCATIONS:
        for status in ("available", "hold"):
            assert api.post(
                "/inventory/adjustments",
                json={"warehouse": "SP1", "location": location, "sku": "SKU-1",
                      "quantity": start, "status": status, "reason": "initial_load"},
            ).status_code == 201  # fmt: skip
    rng = random.Random(20261129)
    requests: list[tuple[str, dict[str, Any]]] = []
    for _ in range(60):
        a, b = rng.sample(LOCATIONS, 2)
        quantity = rng.randint(1, 30)
        requests.append(
            rng.choice(
                [
                    ("/inventory/moves", {"warehouse": "SP1", "sku": "SKU-1", "from_location": a,
                                          "to_location": b, "quantity": quantity}),
                    ("/inventory/status-changes", {"warehouse": "SP1", "location": a,
                                                   "sku": "SKU-1", "quantity": quantity,
                                                   "from_status": "available",
                                                   "to_status": "hold"}),
                    ("/inventory/status-changes", {"warehouse": "SP1", "location": a,
                                                   "sku": "SKU-1", "quantity": quantity,
                                                   "from_status": "hold",
                                                   "to_status": "available"}),
                    ("/inventory/adjustments", {"warehouse": "SP1", "location": a,
                                                "sku": "SKU-1", "quantity": -quantity,
                                                "reason": "lost"}),
                    ("/inventory/adjustments", {"warehouse": "SP1", "location": b,
                                                "sku": "SKU-1", "quantity": quantity,
                                                "reason": "found"}),
                ]
            )
        )  # fmt: skip
    answers: list[tuple[str, dict[str, Any], int, dict[str, Any]]] = []
    barrier = threading.Barrier(len(requests))

    def send(path: str, body: dict[str, Any]) -> None:
        barrier.wait()
        response = api.post(path, json=body)
        answers.append((path, body, response.status_code, response.json()))

    threads = [threading.Thread(target=send, args=request) for request in requests]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted({status for _, _, status, _ in answers})
    assert set(statuses) <= {201, 409}, statuses
    for _, _, status, body in answers:
        if status == 409:
            assert body["type"].endswith(("/insufficient-stock", "/concurrent-update")), body
    adjusted = sum(
        body["quantity"]
        for path, body, status, _ in answers
        if status == 201 and path == "/inventory/adjustments"
    )
    check_invariants(database_url)
    items = api.get("/inventory", params={"sku": "SKU-1", "limit": 500}).json()["items"]
    assert sum(item["on_hand"] for item in items) == start * 6 + adjusted
    assert any(status == 201 for _, _, status, _ in answers)


@pytest.mark.parametrize("direction", [1, -1])
def test_two_opposite_moves_at_once_never_deadlock_into_a_500(
    api: ApiClient, tenant: TenantKeys, database_url: str, direction: int
) -> None:
    build_world(api, tenant, database_url)
    for location in ("A-01", "A-02"):
        api.post(
            "/inventory/adjustments",
            json={"warehouse": "SP1", "location": location, "sku": "SKU-1", "quantity": 50,
                  "reason": "initial_load"},
        )  # fmt: skip
    pairs = [("A-01", "A-02"), ("A-02", "A-01")][::direction] * 10
    barrier = threading.Barrier(len(pairs))
    codes: list[int] = []

    def send(source: str, destination: str) -> None:
        barrier.wait()
        codes.append(
            api.post(
                "/inventory/moves",
                json={"warehouse": "SP1", "sku": "SKU-1", "from_location": source,
                      "to_location": destination, "quantity": 5},
            ).status_code
        )  # fmt: skip

    threads = [threading.Thread(target=send, args=pair) for pair in pairs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert set(codes) <= {201, 409}
    check_invariants(database_url)
    items = api.get("/inventory", params={"sku": "SKU-1"}).json()["items"]
    assert sum(item["on_hand"] for item in items) == 100
