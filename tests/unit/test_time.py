"""The pure time-zone check: IANA names only, never an exception."""

from __future__ import annotations

import pytest

from wms.domain.time import is_time_zone


@pytest.mark.parametrize("name", ["UTC", "America/Sao_Paulo", "Etc/GMT+3"])
def test_an_iana_name_is_a_time_zone(name: str) -> None:
    assert is_time_zone(name)


@pytest.mark.parametrize("name", ["", "America", "Etc", "Nowhere/City", "../etc/passwd", "/UTC"])
def test_garbage_is_no_time_zone(name: str) -> None:
    # "America" (a tzdata folder) used to raise IsADirectoryError instead of answering False.
    assert not is_time_zone(name)
