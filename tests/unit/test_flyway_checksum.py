"""Flyway's checksum, checked against values real Flyway computed and stored.

Sources of the vectors (file content in flyway_vectors/, checksum as Flyway recorded it):
A1/A2/A3 Flyway's own test resources and assertions; B1 flyway/flyway#2474;
CV001-CV005 a project's flyway_schema_history dump beside its files; D1 likewise;
E1 a 10 kB file of Chinese comments, from a history row beside its file.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from wms.store.migrations import flyway_checksum

VECTORS = Path(__file__).parent / "flyway_vectors"
GOLDEN = {
    "A1": 814278929,
    "A2": 454910647,
    "A3": 801496293,
    "B1": -1039259818,
    "CV001": 1020473066,
    "CV002": 2137019270,
    "CV003": -1207237537,
    "CV004": 632760278,
    "CV005": -251040176,
    "D1": -1704270800,
    "E1": 390126216,
}


@pytest.mark.parametrize(("name", "expected"), sorted(GOLDEN.items()))
def test_checksum_matches_what_flyway_recorded(name: str, expected: int) -> None:
    assert flyway_checksum((VECTORS / f"{name}.sql").read_bytes()) == expected


@pytest.mark.parametrize("name", ["A1", "B1", "E1"])
def test_line_endings_and_byte_order_mark_do_not_change_the_checksum(name: str) -> None:
    content = (VECTORS / f"{name}.sql").read_bytes()
    crlf = content.replace(b"\n", b"\r\n")
    bare_cr = content.replace(b"\n", b"\r")
    with_bom = b"\xef\xbb\xbf" + content
    assert flyway_checksum(crlf) == flyway_checksum(bare_cr) == flyway_checksum(with_bom)
    assert flyway_checksum(with_bom) == GOLDEN[name]


def test_empty_file_has_checksum_zero() -> None:
    assert flyway_checksum(b"") == 0
    assert flyway_checksum(b"\n\n") == 0


def test_checksum_is_not_splitlines_based() -> None:
    # Python's splitlines() would also split on U+2028; Java's readLine() does not, and
    # neither may we: the separator's bytes must reach the CRC.
    assert flyway_checksum("a\u2028b".encode()) != flyway_checksum(b"ab")


def test_any_change_in_content_changes_the_checksum() -> None:
    assert flyway_checksum(b"SELECT 1;\n") != flyway_checksum(b"SELECT 2;\n")
