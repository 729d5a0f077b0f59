"""The Terraform of deploy/terraform, parsed with python-hcl2 and scanned with checkov.

Terraform cannot reach its providers here, so `terraform validate`/`plan` run in the
workflow; these tests hold the properties the seed got wrong or the issue asks for.
"""

from __future__ import annotations

import json
import re
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.deploy.conftest_infra import TERRAFORM, ensure_checkov, unquote

MODULES = TERRAFORM / "modules"
STACKS = TERRAFORM / "stacks"
STACK_REGIONS = {"sa-east-1": "sa-east-1", "us-east-1": "us-east-1", "eu-central-1": "eu-central-1"}


@cache
def parse(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return unquote(hcl2.load(handle))


def tf_files() -> list[Path]:
    return sorted(TERRAFORM.rglob("*.tf"))


def blocks(directory: Path, kind: str, type_: str) -> dict[str, dict[str, Any]]:
    """Every ``kind "type_" "name"`` block of the .tf files in ``directory``."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        for entry in parse(path).get(kind, []):
            for name, body in entry.get(type_, {}).items():
                found[name] = body
    return found


def modules_of(stack: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((STACKS / stack).glob("*.tf")):
        for entry in parse(path).get("module", []):
            found.update(entry)
    return found


def test_every_file_parses() -> None:
    files = tf_files()
    assert len(files) >= 30
    for path in files:
        parse(path)


def test_terraform_fmt_clean_when_terraform_is_installed() -> None:
    import shutil

    terraform = shutil.which("terraform")
    if terraform is None:
        pytest.skip("terraform is not installed here (the workflow runs fmt -check)")
    result = subprocess.run(
        [terraform, "fmt", "-check", "-recursive", str(TERRAFORM)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def primary_db() -> dict[str, Any]:
    return blocks(MODULES / "rds", "resource", "aws_db_instance")["primary"]


def test_rds_primary_is_postgres_16_multi_az_encrypted_and_backed_up() -> None:
    db = primary_db()
    assert db["engine"] == "postgres"
    assert str(db["engine_version"]).split(".")[0] == "16"
    assert db["multi_az"] is True
    assert db["storage_encrypted"] is True
    assert db["kms_key_id"].startswith("${aws_kms_key.")
    assert db["backup_retention_period"] == 30
    assert db["performance_insights_enabled"] is True
    assert db["deletion_protection"] is True
    assert db["publicly_accessible"] is False
    assert db["skip_final_snapshot"] is False


def test_no_password_in_state() -> None:
    for module in ("rds", "rds_cross_region_replica"):
        for name, db in blocks(MODULES / module, "resource", "aws_db_instance").items():
            assert "password" not in db, f"{module}.{name} sets a password"
    assert primary_db()["manage_master_user_password"] is True
    assert not blocks(MODULES / "rds", "resource", "random_password")


def test_final_snapshot_name_is_stable() -> None:
    for path in tf_files():
        code = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
        assert "timestamp()" not in "\n".join(code), f"{path} calls timestamp()"
    for module, name in (("rds", "primary"), ("rds_cross_region_replica", "replica")):
        db = blocks(MODULES / module, "resource", "aws_db_instance")[name]
        assert "${random_id.final_snapshot.hex}" in db["final_snapshot_identifier"]
        random_ids = blocks(MODULES / module, "resource", "random_id")
        assert "final_snapshot" in random_ids


def test_parameter_group_preloads_pg_stat_statements() -> None:
    for module in ("rds", "rds_cross_region_replica"):
        group = blocks(MODULES / module, "resource", "aws_db_parameter_group")["this"]
        assert group["family"] == "postgres16"
        params = {p["name"]: p for p in group["parameter"]}
        assert "pg_stat_statements" in params["shared_preload_libraries"]["value"].split(",")
        assert params["shared_preload_libraries"]["apply_method"] == "pending-reboot"
    assert primary_db()["parameter_group_name"] == "${aws_db_parameter_group.this.name}"


def test_reports_replica_is_in_another_az_of_the_same_region() -> None:
    replica = blocks(MODULES / "rds", "resource", "aws_db_instance")["reports_replica"]
    assert replica["replicate_source_db"] == "${aws_db_instance.primary.identifier}"
    assert replica["availability_zone"] == "${var.replica_availability_zone}"
    conditions = " ".join(p["condition"] for p in replica["lifecycle"][0]["precondition"])
    assert "aws_db_instance.primary.availability_zone" in conditions
    assert "data.aws_region.current.name" in conditions
    for stack in ("sa-east-1", "eu-central-1"):
        rds = modules_of(stack)["rds"]
        locals_ = blocks_locals(stack)
        assert rds["replica_availability_zone"] == "${local.azs[2]}"
        assert all(az.startswith(STACK_REGIONS[stack]) for az in locals_["azs"])
        assert len(set(locals_["azs"])) == 3


def blocks_locals(stack: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in sorted((STACKS / stack).glob("*.tf")):
        for entry in parse(path).get("locals", []):
            merged.update(entry)
    return merged


def test_cross_region_replica_uses_the_primary_arn() -> None:
    replica = blocks(MODULES / "rds_cross_region_replica", "resource", "aws_db_instance")["replica"]
    assert "var.source_db_arn" in replica["replicate_source_db"]
    assert replica["storage_encrypted"] is True
    assert replica["kms_key_id"].startswith("${aws_kms_key.")
    assert replica["multi_az"] is True
    assert replica["deletion_protection"] is True
    assert replica["performance_insights_enabled"] is True
    assert "var.promoted ? 30" in replica["backup_retention_period"]
    conditions = " ".join(p["condition"] for p in replica["lifecycle"][0]["precondition"])
    assert "arn:aws:rds:" in conditions
    backups = blocks(
        MODULES / "rds_cross_region_replica",
        "resource",
        "aws_db_instance_automated_backups_replication",
    )
    assert backups["primary"]["retention_period"] == 30
    database = modules_of("us-east-1")["database"]
    assert database["source"] == "../../modules/rds_cross_region_replica"
    assert database["source_db_arn"] == "${var.primary_db_arn}"
    outputs = blocks_outputs("sa-east-1")
    assert outputs["primary_db_arn"]["value"] == "${module.rds.primary_arn}"
    assert blocks_outputs_module("rds")["primary_arn"]["value"] == "${aws_db_instance.primary.arn}"


def blocks_outputs(stack: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in parse(STACKS / stack / "outputs.tf").get("output", []):
        merged.update(entry)
    return merged


def blocks_outputs_module(module: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for entry in parse(MODULES / module / "outputs.tf").get("output", []):
        merged.update(entry)
    return merged


def test_three_stacks_with_their_regions_and_pinned_providers() -> None:
    assert sorted(p.name for p in STACKS.iterdir() if p.is_dir()) == sorted(STACK_REGIONS)
    for stack, region in STACK_REGIONS.items():
        providers = [
            p["aws"]
            for path in (STACKS / stack).glob("*.tf")
            for p in parse(path).get("provider", [])
        ]
        assert [p["region"] for p in providers] == [region]
        terraform = parse(STACKS / stack / "versions.tf")["terraform"][0]
        assert re.fullmatch(r"= \d+\.\d+\.\d+", terraform["required_version"])
        required = terraform["required_providers"][0]
        for name in ("aws", "random"):
            assert re.fullmatch(r"= \d+\.\d+\.\d+", required[name]["version"]), (stack, name)
        backend = parse(STACKS / stack / "backend.tf")["terraform"][0]["backend"][0]
        assert backend == {"s3": {}}, "remote state is configured at init time, no real names"
        example = (STACKS / stack / "backend.hcl.example").read_text()
        assert "dynamodb_table" in example
        assert "REPLACE-ME" in example
    for module in MODULES.iterdir():
        required = parse(module / "versions.tf")["terraform"][0]["required_providers"][0]
        assert re.fullmatch(r">= 5\.\d+\.\d+, < 6\.0\.0", required["aws"]["version"]), module


def test_every_stack_has_the_regional_building_blocks() -> None:
    common = {"network", "eks", "redis", "kafka", "backups"}
    assert common | {"rds"} <= set(modules_of("sa-east-1"))
    assert common | {"database", "dns"} <= set(modules_of("us-east-1"))
    assert common | {"rds"} <= set(modules_of("eu-central-1"))
    frankfurt = (STACKS / "eu-central-1" / "main.tf").read_text()
    assert "replicate_source_db" not in frankfurt
    assert "source_db_arn" not in frankfurt


def test_network_spans_three_azs_and_eks_autoscales() -> None:
    variables = {
        name: body
        for entry in parse(MODULES / "network" / "variables.tf")["variable"]
        for name, body in entry.items()
    }
    assert "length(var.azs) == 3" in variables["azs"]["validation"][0]["condition"]
    for kind in ("public", "private", "database"):
        subnet = blocks(MODULES / "network", "resource", "aws_subnet")[kind]
        assert subnet["count"] == "${local.az_count}"
    group = blocks(MODULES / "eks", "resource", "aws_eks_node_group")["this"]
    scaling = group["scaling_config"][0]
    assert scaling["min_size"] == "${each.value.min_size}"
    assert scaling["max_size"] == "${each.value.max_size}"
    assert group["subnet_ids"] == "${var.subnet_ids}"
    assert "scaling_config[0].desired_size" in str(group["lifecycle"][0]["ignore_changes"])
    cluster = blocks(MODULES / "eks", "resource", "aws_eks_cluster")["this"]
    assert cluster["encryption_config"][0]["resources"] == ["secrets"]


def test_redis_and_kafka_are_encrypted_and_highly_available() -> None:
    redis = blocks(MODULES / "redis", "resource", "aws_elasticache_replication_group")["this"]
    assert redis["automatic_failover_enabled"] is True
    assert redis["multi_az_enabled"] is True
    assert redis["at_rest_encryption_enabled"] is True
    assert redis["transit_encryption_enabled"] is True
    kafka = blocks(MODULES / "kafka", "resource", "aws_msk_cluster")["this"]
    assert kafka["number_of_broker_nodes"] == 3
    transit = kafka["encryption_info"][0]["encryption_in_transit"][0]
    assert transit == {"client_broker": "TLS", "in_cluster": True}
    assert kafka["client_authentication"][0]["sasl"][0]["iam"] is True


def test_backup_bucket_versioned_encrypted_private_with_cold_lifecycle() -> None:
    module = MODULES / "backup_bucket"
    versioning = blocks(module, "resource", "aws_s3_bucket_versioning")["backups"]
    assert versioning["versioning_configuration"][0]["status"] == "Enabled"
    sse = blocks(module, "resource", "aws_s3_bucket_server_side_encryption_configuration")
    default = sse["backups"]["rule"][0]["apply_server_side_encryption_by_default"][0]
    assert default["sse_algorithm"] == "aws:kms"
    block = blocks(module, "resource", "aws_s3_bucket_public_access_block")["backups"]
    assert all(
        block[key] is True
        for key in (
            "block_public_acls",
            "block_public_policy",
            "ignore_public_acls",
            "restrict_public_buckets",
        )
    )
    lifecycle = blocks(module, "resource", "aws_s3_bucket_lifecycle_configuration")["backups"]
    rule = lifecycle["rule"][0]
    assert rule["status"] == "Enabled"
    classes = {t["storage_class"] for t in rule["transition"]}
    assert {"GLACIER", "DEEP_ARCHIVE"} <= classes


def test_route53_failover_records() -> None:
    records = blocks(MODULES / "dns_failover", "resource", "aws_route53_record")
    assert records["primary"]["failover_routing_policy"][0]["type"] == "PRIMARY"
    assert records["secondary"]["failover_routing_policy"][0]["type"] == "SECONDARY"
    assert records["primary"]["health_check_id"] == "${aws_route53_health_check.primary.id}"
    check = blocks(MODULES / "dns_failover", "resource", "aws_route53_health_check")["primary"]
    assert check["resource_path"] == "/health/ready"


SKIP = re.compile(r"#checkov:skip=(CKV2?_[A-Z0-9_]+):(\S.*)")


def test_every_checkov_skip_has_a_reason() -> None:
    skips = []
    for path in tf_files():
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                match = SKIP.search(line)
                assert match, f"{path}: {line.strip()}"
                assert len(match.group(2)) > 20, f"{path}: {line.strip()}"
                skips.append(match.group(1))
    assert skips, "expected the documented skips"
    docs = (TERRAFORM.parents[1] / "docs" / "infrastructure.md").read_text()
    for check in set(skips):
        assert check in docs, f"{check} is skipped but not listed in docs/infrastructure.md"


@pytest.mark.timeout(1800)
def test_checkov_passes_with_only_documented_skips() -> None:
    checkov, reason = ensure_checkov()
    if checkov is None:
        pytest.skip(reason)
    result = subprocess.run(
        [
            checkov,
            "--config-file",
            str(TERRAFORM / ".checkov.yaml"),
            "-d",
            str(TERRAFORM),
            "-o",
            "json",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    report = json.loads(result.stdout)
    reports = report if isinstance(report, list) else [report]
    summary = reports[0]["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} {c['file_path']}"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    print(f"checkov {summary['checkov_version']}: {summary}")
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100
    assert not failed, "\n".join(failed)
