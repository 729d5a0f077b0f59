"""``wms-server archive``: old months exported, verified, removed; the invariant keeps holding."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

from tests.conftest import ApiClient, TenantKeys
from tests.integration.stock_world import build_world
from tests.integration.test_backup import fingerprint, moto_s3, run, use_database
from tests.integration.test_stock_invariants import check_invariants
from wms.config import Settings
from wms.ops.archive import cutoff_for
from wms.ops.storage import sha256_of
from wms.store.archive import Month

__all__ = ["moto_s3"]  # the S3 test uses test_backup's moto server fixture
RETENTION = 3


def months_back(first: date, count: int) -> date:
    index = first.year * 12 + first.month - 1 - count
    return date(index // 12, index % 12 + 1, 1)


def at(day: date, d: int = 10) -> datetime:
    return datetime(day.year, day.month, d, 12, tzinfo=UTC)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    assert settings.database_url is not None
    use_database(monkeypatch, settings.database_url)
    monkeypatch.setenv("WMS_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("ENVIRONMENT", "test")
    return settings


class History:
    """Months of a ledger built as a long-running system would have it."""

    def __init__(self) -> None:
        cutoff = cutoff_for(RETENTION)
        self.cutoff = cutoff
        # Partitions as the worker made them; the oldest month has none (default rows).
        self.no_partition = months_back(cutoff, 5)
        self.empty = months_back(cutoff, 4)
        self.old = [months_back(cutoff, 3), months_back(cutoff, 2), months_back(cutoff, 1)]
        self.kept = cutoff  # a partition at the cutoff stays
        self.ledger: dict[str, int] = {}
        self.audit: dict[str, int] = {}
        self.outbox: dict[str, int] = {}


@pytest.fixture
def history(api: ApiClient, tenant: TenantKeys, database_url: str) -> History:
    build_world(api, tenant, database_url)
    for quantity, location in [(40, "A-01"), (15, "A-02"), (7, "P-01")]:
        response = api.post(
            "/inventory/adjustments",
            json={"warehouse": "SP1", "location": location, "sku": "SKU-1",
                  "quantity": quantity, "reason": "found"},
        )  # fmt: skip
        assert response.status_code == 201, response.text
    h = History()
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SET ROLE wms_owner")
        for month in [h.empty, *h.old, h.kept]:
            name = f"inventory_movements_y{month:%Y}m{month:%m}"
            if conn.execute("SELECT to_regclass(%s)", (f"wms.{name}",)).fetchone() == (None,):
                end = Month(month).end
                conn.execute(
                    f"CREATE TABLE wms.{name} PARTITION OF wms.inventory_movements "
                    f"FOR VALUES FROM ('{month} 00:00+00') TO ('{end} 00:00+00')"
                )
        conn.execute("RESET ROLE")
        keys = conn.execute(
            "SELECT warehouse_id, location_id, product_id, lot_code, status "
            "FROM wms.inventory_balances WHERE tenant_id = %s ORDER BY location_id",
            (tenant.tenant_id,),
        ).fetchall()
        pattern = [(h.no_partition, [5, -2]), (h.old[0], [10, 3, -4]), (h.old[1], [8]),
                   (h.old[2], [6, -1, 2, 2]), (h.kept, [4])]  # fmt: skip
        for month, quantities in pattern:
            for i, quantity in enumerate(quantities):
                warehouse, location, product, lot, status = keys[i % len(keys)]
                conn.execute(
                    "INSERT INTO wms.inventory_movements (tenant_id, occurred_at, warehouse_id, "
                    "location_id, product_id, lot_code, status, quantity, kind, reason, actor) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'adjustment', 'history', 'test')",
                    (tenant.tenant_id, at(month, 3 + i), warehouse, location, product, lot,
                     status, quantity),
                )  # fmt: skip
                conn.execute(
                    "UPDATE wms.inventory_balances SET on_hand = on_hand + %s WHERE tenant_id = %s "
                    "AND warehouse_id = %s AND location_id = %s AND product_id = %s "
                    "AND lot_code = %s AND status = %s",
                    (quantity, tenant.tenant_id, warehouse, location, product, lot, status),
                )
            h.ledger[Month(month).label] = len(quantities)
        # Backdate some of the real audit rows and events into the old months.
        for table, counts in (("audit_log", h.audit), ("outbox", h.outbox)):
            ids = [r[0] for r in conn.execute(f"SELECT id FROM wms.{table} ORDER BY id").fetchall()]
            assert len(ids) >= 3
            for row_id, month in zip(ids, [h.no_partition, h.old[0], h.old[0]], strict=False):
                conn.execute(
                    f"UPDATE wms.{table} SET occurred_at = %s WHERE id = %s", (at(month), row_id)
                )
                counts[Month(month).label] = counts.get(Month(month).label, 0) + 1
    check_invariants(database_url)
    return h


def partitions(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'wms.inventory_movements'::regclass"
        ).fetchall()
    return {str(r[0]) for r in rows}


def test_dry_run_prints_the_plan_and_changes_nothing(
    env: Settings, history: History, database_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    before = fingerprint(database_url)
    target = tmp_path / "archive"
    argv = ["archive", "--to", str(target), "--retention-months", str(RETENTION), "--dry-run"]
    assert run(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    labels = [Month(m).label for m in [history.no_partition, history.empty, *history.old]]
    for label in labels:
        assert f"would archive {label}:" in out
    first = Month(history.old[0]).label
    assert f"would archive {first}: inventory_movements 3, audit_log 2, outbox 2 rows" in out
    assert f"drop partition inventory_movements_y{history.old[0]:%Y}m{history.old[0]:%m}" in out
    assert f"{len(labels)} month(s) would be archived" in out
    assert f"would archive {Month(history.kept).label}" not in out
    assert fingerprint(database_url) == before
    assert not target.exists()


def test_archive_exports_verifies_drops_and_keeps_the_invariant(  # noqa: PLR0915 - one story
    env: Settings, history: History, *, api: ApiClient, database_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    target = tmp_path / "archive"
    with psycopg.connect(database_url) as conn:
        on_hand_before = conn.execute("SELECT sum(on_hand) FROM wms.inventory_balances").fetchone()
    argv = ["archive", "--to", str(target), "--retention-months", str(RETENTION)]
    assert run(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    archived = [Month(m) for m in [history.no_partition, history.empty, *history.old]]
    assert f"{len(archived)} month(s) archived (before {history.cutoff})" in out

    for month in archived:
        folder = target / month.label
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["month"] == month.label
        expected = {
            "inventory_movements": history.ledger.get(month.label, 0),
            "audit_log": history.audit.get(month.label, 0),
            "outbox": history.outbox.get(month.label, 0),
        }
        assert {t: e["rows"] for t, e in manifest["tables"].items()} == expected
        for entry in manifest["tables"].values():
            path = folder / entry["file"]
            assert sha256_of(path) == entry["sha256"]
            lines = gzip.decompress(path.read_bytes()).decode().splitlines()
            assert len(lines) == entry["rows"] + 1  # a header, then the rows

    # Old partitions are gone, the kept one and the current ones are not.
    names = partitions(database_url)
    for month in [history.empty, *history.old]:
        assert f"inventory_movements_y{month:%Y}m{month:%m}" not in names
    assert f"inventory_movements_y{history.kept:%Y}m{history.kept:%m}" in names
    with psycopg.connect(database_url) as conn:
        cut = datetime(history.cutoff.year, history.cutoff.month, 1, tzinfo=UTC)
        for table in ("inventory_movements", "audit_log", "outbox"):
            old = conn.execute(
                f"SELECT count(*) FROM wms.{table} WHERE occurred_at < %s", (cut,)
            ).fetchone()
            assert old == (0,), table
        openings = conn.execute(
            "SELECT sum(quantity), max(as_of) FROM wms.inventory_openings"
        ).fetchone()
        assert openings == (5 - 2 + 10 + 3 - 4 + 8 + 6 - 1 + 2 + 2, cut)
        pruned = conn.execute("SELECT count(*) FROM wms.outbox_pruned").fetchone()
        assert pruned == (1,)
        assert (
            conn.execute("SELECT sum(on_hand) FROM wms.inventory_balances").fetchone()
            == on_hand_before
        )
    check_invariants(database_url)

    # Commands keep working and the invariant keeps holding after archival.
    response = api.post(
        "/inventory/adjustments",
        json={"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "quantity": -3,
              "reason": "lost"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    check_invariants(database_url)

    # Nothing is left to archive; a second run is a no-op.
    assert run(argv) == 0
    assert "0 month(s) archived" in capsys.readouterr().out

    # An archived month loads back into a schema of its own for an audit.
    month = Month(history.old[0])
    assert run(["archive", "restore", "--from", str(target), "--month", month.label,
                "--schema", "audit_q"]) == 0, capsys.readouterr().err  # fmt: skip
    assert "audit_q.inventory_movements 3" in capsys.readouterr().out
    with psycopg.connect(database_url) as conn:
        restored = conn.execute(
            "SELECT count(*), sum(quantity), min(occurred_at) >= %s "
            "FROM audit_q.inventory_movements",
            (at(month.start, 1),),
        ).fetchone()
        assert restored == (3, 9, True)
        assert conn.execute("SELECT count(*) FROM audit_q.audit_log").fetchone() == (2,)
        kinds = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = 'audit_q' "
            "AND table_name = 'outbox' AND column_name = 'data'"
        ).fetchone()
        assert kinds == ("jsonb",)

    # The same schema twice, a bad month, a missing month, a damaged file: one line each.
    ledger_file = target / month.label / "inventory_movements.csv.gz"
    for argv_restore, code, text in [
        (["archive", "restore", "--from", str(target), "--month", month.label,
          "--schema", "audit_q"], 1, "already exists"),
        (["archive", "restore", "--from", str(target), "--month", "2026-13"], 2, "YYYY-MM"),
        (["archive", "restore", "--from", str(target), "--month", "1999-01"], 1,
         "no archive of 1999-01"),
        (["archive"], 2, "--to"),
    ]:  # fmt: skip
        assert run(argv_restore) == code, argv_restore
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err
        assert text in err, err
    data = bytearray(ledger_file.read_bytes())
    data[-10] ^= 0x01
    ledger_file.write_bytes(bytes(data))
    assert run(["archive", "restore", "--from", str(target), "--month", month.label]) == 1
    assert "damaged or altered" in capsys.readouterr().err


def test_with_kafka_a_month_of_unpublished_events_is_refused(
    env: Settings, history: History, *, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """With a relay, an event Kafka never acknowledged stops archival of its month."""
    monkeypatch.setenv("KAFKA_BROKERS", "127.0.0.1:9")  # archival never connects to it
    target = tmp_path / "archive"
    argv = ["archive", "--to", str(target), "--retention-months", str(RETENTION)]
    oldest, first_old = Month(history.no_partition), Month(history.old[0])

    assert run([*argv, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would archive {oldest.label}: inventory_movements 2, audit_log 1, outbox 1 rows; " \
        "1 event(s) not yet published to Kafka: refused" in out  # fmt: skip

    before = fingerprint(database_url)
    assert run(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert f"{oldest.label}: 1 event(s) of that month are not yet published to Kafka" in err
    assert fingerprint(database_url) == before
    assert not (target / oldest.label).exists()

    # Published, the oldest month goes; the next one's two events (one parked) stop the run.
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "UPDATE wms.outbox SET published_at = now() WHERE occurred_at < %s",
            (at(oldest.end, 1),),
        )
        conn.execute(
            "UPDATE wms.outbox SET parked_at = now(), parked_reason = 'too large' WHERE id = "
            "(SELECT min(id) FROM wms.outbox WHERE occurred_at >= %s AND occurred_at < %s)",
            (at(first_old.start, 1), at(first_old.end, 1)),
        )
    assert run(argv) == 1
    assert f"{first_old.label}: 2 event(s) of that month" in capsys.readouterr().err
    assert (target / oldest.label / "manifest.json").exists()
    first_partition = f"inventory_movements_y{first_old.start:%Y}m{first_old.start:%m}"
    assert first_partition in partitions(database_url)

    assert run([*argv, "--include-unpublished"]) == 0, capsys.readouterr().err
    assert "month(s) archived" in capsys.readouterr().out
    assert first_partition not in partitions(database_url)
    manifest = json.loads((target / first_old.label / "manifest.json").read_text())
    assert manifest["tables"]["outbox"]["rows"] == 2
    check_invariants(database_url)


def test_archive_to_s3_and_back(
    env: Settings, history: History, database_url: str, moto_s3: str,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import boto3

    bucket = f"wms-archive-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=moto_s3).create_bucket(Bucket=bucket)
    url = f"s3://{bucket}/ledger"
    assert run(["archive", "--to", url, "--retention-months", str(RETENTION)]) == 0, (
        capsys.readouterr().err
    )
    capsys.readouterr()
    check_invariants(database_url)
    month = Month(history.old[2])
    assert run(["archive", "restore", "--from", url, "--month", month.label]) == 0
    schema = f"archive_{month.start:%Y_%m}"
    assert f"{schema}.inventory_movements 4" in capsys.readouterr().out


def test_a_month_where_a_key_nets_to_zero_is_archived(
    env: Settings, *, api: ApiClient, tenant: TenantKeys, database_url: str, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # The export's read-back kept the key with 0, the database's side did not: never equal,
    # so such a month (stock received, then put away) could never be archived.
    build_world(api, tenant, database_url)
    response = api.post(
        "/inventory/adjustments",
        json={"warehouse": "SP1", "location": "A-01", "sku": "SKU-1", "quantity": 10,
              "reason": "found"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    old = months_back(cutoff_for(RETENTION), 2)
    with psycopg.connect(database_url, autocommit=True) as conn:
        key = conn.execute(
            "SELECT warehouse_id, location_id, product_id, lot_code, status "
            "FROM wms.inventory_balances WHERE tenant_id = %s LIMIT 1",
            (tenant.tenant_id,),
        ).fetchone()
        assert key is not None
        for day, quantity in ((3, 5), (4, -5)):
            conn.execute(
                "INSERT INTO wms.inventory_movements (tenant_id, occurred_at, warehouse_id, "
                "location_id, product_id, lot_code, status, quantity, kind, reason, actor) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 'adjustment', 'history', 'test')",
                (tenant.tenant_id, at(old, day), *key, quantity),
            )
    argv = ["archive", "--to", str(tmp_path / "arch"), "--retention-months", str(RETENTION)]
    assert run(argv) == 0, capsys.readouterr().err
    assert f"archived {Month(old).label}: inventory_movements 2" in capsys.readouterr().out
    check_invariants(database_url)


@pytest.mark.parametrize("months", ["1201", "30000"])
def test_a_retention_out_of_range_is_a_usage_error(
    env: Settings, capsys: pytest.CaptureFixture[str], months: str
) -> None:
    # 30000 months computed a cutoff in year -474: a ValueError traceback.
    assert run(["archive", "--dry-run", "--retention-months", months]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "--retention-months" in line


def archived_month(folder: Path, *, file: str = "t.csv.gz", kind: str = "integer") -> Path:
    """An archive of 2024-01 holding one table ``t`` of one column of type ``kind``."""
    month = folder / "2024-01"
    month.mkdir(parents=True)
    data = month / "t.csv.gz"
    data.write_bytes(gzip.compress(b"a\n1\n"))
    entry = {"file": file, "rows": 1, "sha256": sha256_of(data), "columns": [["a", kind]]}
    manifest = {"format": "wms-archive/1", "tables": {"t": entry}}
    (month / "manifest.json").write_text(json.dumps(manifest))
    return folder


@pytest.mark.parametrize("schema", ["pg_audit", "x" * 64, ""])
def test_archive_restore_into_a_reserved_or_overlong_schema_name_is_a_usage_error(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], schema: str
) -> None:
    # CREATE SCHEMA pg_audit raised ReservedName: a traceback.
    source = archived_month(tmp_path / "arch")
    argv = ["archive", "restore", "--from", str(source), "--month", "2024-01", "--schema"]
    assert run([*argv, schema]) == 2
    [line] = capsys.readouterr().err.splitlines()
    assert "--schema" in line


def test_archive_restore_refusals_by_the_database_are_one_line_and_leave_nothing(
    env: Settings, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A psycopg error (here a column type the database does not know) ended in a traceback.
    source = archived_month(tmp_path / "arch", kind="nosuchtype")
    assert run(["archive", "restore", "--from", str(source), "--month", "2024-01"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("wms-server: 2024-01 was not restored into archive_2024_01: ")
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regnamespace('archive_2024_01')").fetchone() == (None,)


@pytest.mark.parametrize("file", ["../t.csv.gz", "/etc/hostname", "sub/t.csv.gz"])
def test_archive_restore_reads_no_file_outside_the_months_folder(
    env: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str], file: str
) -> None:
    # The manifest's file name was joined unchecked: ../x or /x was read (and written) elsewhere.
    (tmp_path / "arch").mkdir()
    (tmp_path / "arch" / "t.csv.gz").write_bytes(gzip.compress(b"a\n1\n"))
    source = archived_month(tmp_path / "arch", file=file)
    assert run(["archive", "restore", "--from", str(source), "--month", "2024-01"]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert "which is not a file of that folder" in line
