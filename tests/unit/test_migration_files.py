from __future__ import annotations

from pathlib import Path

import pytest

from wms.store.migrations import (
    MINIMUM_SCHEMA_VERSION,
    MigrationError,
    default_migrations_dir,
    highest_version,
    load_migrations,
    parse_version,
)


def write(folder: Path, name: str, text: str = "SELECT 1;\n") -> None:
    (folder / name).write_text(text)


def test_the_shipped_migrations_load_with_unique_versions_in_order() -> None:
    migrations = load_migrations()
    versions = [m.version_key for m in migrations]
    assert versions == sorted(set(versions))
    assert migrations[0].script == "V1__initial_schema.sql"
    assert migrations[0].description == "initial schema"


def test_the_build_minimum_schema_version_is_shipped() -> None:
    shipped = [m.version for m in load_migrations()]
    assert MINIMUM_SCHEMA_VERSION in shipped


def test_the_shipped_folder_is_the_repository_migrations_folder() -> None:
    assert (default_migrations_dir() / "V1__initial_schema.sql").is_file()


def test_duplicate_versions_are_rejected(tmp_path: Path) -> None:
    write(tmp_path, "V1__first.sql")
    write(tmp_path, "V2__second.sql")
    write(tmp_path, "V2__second_copy.sql")
    with pytest.raises(MigrationError, match="version 2 is used twice"):
        load_migrations(tmp_path)


def test_versions_equal_but_for_trailing_zeros_are_duplicates(tmp_path: Path) -> None:
    write(tmp_path, "V1__first.sql")
    write(tmp_path, "V1.0__again.sql")
    with pytest.raises(MigrationError, match="is used twice"):
        load_migrations(tmp_path)


def test_a_file_that_is_not_a_versioned_migration_is_rejected(tmp_path: Path) -> None:
    write(tmp_path, "initial.sql")
    with pytest.raises(MigrationError, match=r"initial\.sql"):
        load_migrations(tmp_path)


def test_versions_order_numerically_not_as_text(tmp_path: Path) -> None:
    for name in ["V1.10__c.sql", "V1.9__b.sql", "V1__a.sql", "V10__d.sql", "V2__e.sql"]:
        write(tmp_path, name)
    assert [m.version for m in load_migrations(tmp_path)] == ["1", "1.9", "1.10", "2", "10"]


def test_underscores_in_descriptions_become_spaces_and_in_versions_dots(tmp_path: Path) -> None:
    write(tmp_path, "V3_1__add_audit_table.sql")
    (migration,) = load_migrations(tmp_path)
    assert migration.version == "3.1"
    assert migration.description == "add audit table"


def test_highest_version_compares_numerically() -> None:
    assert highest_version(["1", "10", "9", "1.5"]) == "10"
    assert highest_version([]) is None
    assert parse_version("2.0.1") == (2, 0, 1)
    assert parse_version("2.0") == parse_version("2")
