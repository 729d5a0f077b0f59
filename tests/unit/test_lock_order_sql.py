"""Balances are locked in one order everywhere, whatever the database's collation.

Commands lock the balances they change in key order (warehouse, location, product, lot,
status) so that two of them never wait on each other in opposite orders. Lots and
statuses are text: under the database's default collation (en_US on most managed
PostgreSQL) ``LOT-2`` sorts before ``LOT1``, under "C" (and Python's ``sorted``) after.
One statement sorting by the default and another by "C" would lock two such lots in
opposite orders; each statement that locks balances by key sorts its text with "C".
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import wms.store

STORE = Path(wms.store.__file__).parent
_ORDER_BY = re.compile(
    r"ORDER BY (?P<keys>b\.warehouse_id, b\.location_id, .*?)(?: FOR | LIMIT |$)"
)


def locking_statements() -> list[tuple[str, str]]:
    """(file, ORDER BY keys) of every SQL literal in the store that locks balances in key order."""
    found = []
    for path in sorted(STORE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str)):
                continue
            sql = node.value
            if "FOR UPDATE" not in sql and "FOR NO KEY UPDATE" not in sql:
                continue
            for match in _ORDER_BY.finditer(sql):
                found.append((path.name, match.group("keys")))
    return found


def test_every_statement_locking_balances_in_key_order_sorts_lots_and_statuses_bytewise() -> None:
    statements = locking_statements()
    assert len(statements) >= 4  # inventory.lock_balances and three in orders
    for file, keys in statements:
        assert 'b.lot_code COLLATE "C"' in keys, (file, keys)
        assert re.search(r'b\.status(::text)? COLLATE "C"', keys), (file, keys)
