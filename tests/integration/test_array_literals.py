"""List parameters as array literals (store/arrays.py): PostgreSQL reads back what was sent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any

import psycopg
import pytest
from psycopg.adapt import PyFormat

from wms.store.arrays import ArrayLiteralDumper, send_lists_as_literals
from wms.store.database import create_pool


class Colour(StrEnum):
    RED = "red"


class Rank(IntEnum):
    FIRST = 1


@pytest.fixture
def conn(empty_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(empty_database_url, autocommit=True) as connection:
        send_lists_as_literals(connection)
        yield connection


@pytest.mark.parametrize(
    ("values", "cast", "expected"),
    [
        (['a"b', "c\\d", "NULL", None, "", " x ", "é,{}", '\\"'], "text[]", None),
        ([9_223_372_036_854_775_807, -1, 0], "bigint[]", None),
        ([], "bigint[]", None),
        ([None, None], "text[]", None),
        ([[1, 2], [3, 4]], "int[]", None),
        ([True, False, None], "boolean[]", None),
        ([date(2026, 12, 6)], "date[]", None),
        ([Decimal("1.50")], "numeric[]", None),
        ([Colour.RED], "text[]", ["red"]),
        ([Rank.FIRST], "int[]", [1]),
    ],
)
def test_lists_read_back_as_sent(
    conn: psycopg.Connection[Any], values: list[Any], cast: str, expected: list[Any] | None
) -> None:
    row = conn.execute(f"SELECT %s::{cast}", (values,)).fetchone()
    assert row is not None
    assert row[0] == (values if expected is None else expected)


def test_an_element_without_a_literal_is_refused(conn: psycopg.Connection[Any]) -> None:
    with pytest.raises(TypeError, match="bytes"):
        conn.execute("SELECT %s::bytea[]", ([b"\x00"],))


def test_a_list_whose_type_the_statement_leaves_open_fails_instead_of_guessing(
    conn: psycopg.Connection[Any],
) -> None:
    with pytest.raises(psycopg.errors.AmbiguousFunction):
        conn.execute("SELECT unnest(%s)", ([1, 2],))


def test_the_servers_sessions_send_lists_as_literals(empty_database_url: str) -> None:
    async def read_back() -> tuple[object, Any]:
        pool = create_pool(
            empty_database_url, min_size=1, max_size=1, statement_timeout_ms=5000,
            lock_timeout_ms=2000,
        )  # fmt: skip
        await pool.open(wait=True)
        try:
            async with pool.connection() as session:
                cursor = await session.execute("SELECT %s::text[]", (['x"', None],))
                dumper = session.adapters.get_dumper(list, PyFormat.TEXT)
                return dumper, await cursor.fetchone()
        finally:
            await pool.close()

    dumper, row = asyncio.run(read_back())
    assert dumper is ArrayLiteralDumper
    assert row == (['x"', None],)
