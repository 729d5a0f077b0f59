"""Monitoring artifacts (deploy/monitoring, docs/runbooks), checked with the real tools.

``promtool`` (Debian package ``prometheus``) checks and unit-tests the rules; ``amtool``
(``prometheus-alertmanager``) checks the Alertmanager configuration and its routing.
Where one is missing its tests skip, except in CI (``CI`` set) where they fail, as the
other deployment checks do. The dashboard checks need no tool for the metric names; the
PromQL syntax of every dashboard query is checked by promtool too.

A dashboard or rule may only query metric names that exist: ours (read from
prometheus_client's registry after importing every module that defines metrics),
the recording rules', or the pinned exporters' (deploy/monitoring/exporter-metrics/).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import pkgutil
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO

MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "prometheus-rules.yaml"
RULE_TESTS = sorted((MONITORING / "tests").glob("*.yaml"))
ALERTMANAGER = MONITORING / "alertmanager.yaml"
DASHBOARDS = sorted((MONITORING / "dashboards").glob("*.json"))
EXPORTER_LISTS = MONITORING / "exporter-metrics"
RUNBOOK_BASE = "https://github.com/wms-enterprise/wms/blob/main/"
# Series Prometheus itself adds to every target, whatever it exposes.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped", "ALERTS"}
SEVERITY_RECEIVER = {"page": "pager", "ticket": "ticket", "warning": "ticket"}


def tool(name: str, package: str) -> str:
    """Path of a Prometheus tool; skip without it (fail in CI, where it is installed)."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (apt-get install {package})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)


def rule_groups() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    assert isinstance(groups, list)
    return groups


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


# --- rules ------------------------------------------------------------------------------


def test_rules_pass_promtool_check() -> None:
    promtool = tool("promtool", "prometheus")
    result = run(promtool, "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass() -> None:
    promtool = tool("promtool", "prometheus")
    assert RULE_TESTS
    result = run(promtool, "test", "rules", *map(str, RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    firing: set[str] = set()
    silent: set[str] = set()
    for path in RULE_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else silent).add(check["alertname"])
    alerts = {rule["alert"] for rule in alerting_rules()}
    assert alerts - firing == set(), "alerts without a case where they fire"
    assert alerts - silent == set(), "alerts without a case where they stay silent"


def test_every_alert_is_routable_and_documented() -> None:
    for rule in alerting_rules():
        name = rule["alert"]
        assert rule.get("for"), f"{name}: no `for:`"
        assert rule["labels"]["severity"] in SEVERITY_RECEIVER, name
        annotations = rule["annotations"]
        assert annotations["summary"], name
        assert annotations["description"], name
        url = annotations["runbook_url"]
        assert url.startswith(RUNBOOK_BASE), f"{name}: {url}"
        path, _, anchor = url.removeprefix(RUNBOOK_BASE).partition("#")
        runbook = REPO / path
        assert runbook.is_file(), f"{name}: {url} names no file in the repository"
        text = runbook.read_text()
        assert name in text, f"{runbook} does not mention {name}"
        if anchor:  # GitHub's heading anchors: lower case, spaces to hyphens
            headings = {
                line.lstrip("#").strip().lower().replace(" ", "-")
                for line in text.splitlines()
                if line.startswith("#")
            }
            assert anchor in headings, f"{name}: {runbook} has no heading #{anchor}"


def test_rule_groups_leave_the_interval_to_prometheus() -> None:
    # The e2e test evaluates this very file every second: no group may pin its own pace.
    assert all("interval" not in group for group in rule_groups())


def test_rules_query_only_known_metric_names(known_names: set[str]) -> None:
    unknown = {
        (rule.get("alert") or rule.get("record"), name)
        for group in rule_groups()
        for rule in group["rules"]
        for name in metric_names(rule["expr"])
        if name not in known_names
    }
    assert unknown == set()


# --- alertmanager -----------------------------------------------------------------------


def test_alertmanager_config_passes_amtool() -> None:
    amtool = tool("amtool", "prometheus-alertmanager")
    result = run(amtool, "check-config", str(ALERTMANAGER))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("severity", "receiver"), sorted(SEVERITY_RECEIVER.items()))
def test_alertmanager_routes_each_severity(severity: str, receiver: str) -> None:
    amtool = tool("amtool", "prometheus-alertmanager")
    result = run(
        amtool, "config", "routes", "test", f"--config.file={ALERTMANAGER}",
        f"--verify.receivers={receiver}", "alertname=Anything", f"severity={severity}",
        "namespace=wms-prod",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_inhibits_tickets_and_warnings_of_a_paged_slo() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    rules = config["inhibit_rules"]
    page = next(rule for rule in rules if 'severity="page"' in rule["source_matchers"])
    assert 'severity=~"ticket|warning"' in page["target_matchers"]
    assert set(page["equal"]) == {"namespace", "slo"}
    # Every page alert about an SLO carries the label the inhibition compares.
    for rule in alerting_rules():
        if rule["labels"]["severity"] == "page" and rule["alert"].startswith("SLO"):
            assert rule["labels"]["slo"] in {"availability", "latency"}


def test_alertmanager_holds_no_inline_secret() -> None:
    config = yaml.safe_load(ALERTMANAGER.read_text())
    for receiver in config["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            authorization = webhook["http_config"]["authorization"]
            assert "credentials" not in authorization
            assert authorization["credentials_file"].startswith("/etc/alertmanager/secrets/")


# --- dashboards -------------------------------------------------------------------------


def test_five_dashboards_parse_with_unique_uids() -> None:
    boards = [json.loads(path.read_text()) for path in DASHBOARDS]
    titles = {board["title"] for board in boards}
    assert titles == {
        "WMS / System overview",
        "WMS / Application",
        "WMS / Database",
        "WMS / Message queue",
        "WMS / Business",
    }
    assert len({board["uid"] for board in boards}) == len(boards)
    for board in boards:
        panels = [panel for panel in board["panels"] if panel["type"] != "row"]
        assert panels, board["title"]
        assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])
        for panel in panels:
            assert panel["targets"], f"{board['title']}: {panel['title']}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every query (Grafana variables substituted) loads as a recording rule in promtool."""
    promtool = tool("promtool", "prometheus")
    rules = [
        {"record": f"dashboard_query_{index}", "expr": expr}
        for index, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = run(promtool, "check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dashboard_queries_use_only_known_metric_names(known_names: set[str]) -> None:
    unknown = {
        (where, name)
        for where, expr in dashboard_queries()
        for name in metric_names(expr)
        if name not in known_names
    }
    assert unknown == set(), (
        "names neither in our registry, the recording rules nor exporter-metrics/*.txt"
    )


def test_exporter_lists_name_their_pinned_versions() -> None:
    versions = {
        "node.txt": "node_exporter v1.",
        "postgres.txt": "postgres_exporter v0.15.",
        "kafka.txt": "kafka_exporter v1.",
    }
    for name, version in versions.items():
        header = (EXPORTER_LISTS / name).read_text().split("\n", 1)[0]
        assert version in header, name


# --- helpers ----------------------------------------------------------------------------

GRAFANA_INTERVALS = re.compile(r"\$\{?__(?:rate_interval|interval|range)\}?")
GRAFANA_VARIABLE = re.compile(r"\$\{\w+(?::\w+)?\}|\$\w+|\[\[\w+\]\]")
LABEL_VALUES = re.compile(r"^\s*label_values\((?:(?P<selector>.+),)?\s*(?P<label>\w+)\s*\)\s*$")


def substitute(expr: str) -> str:
    """A Grafana query as Prometheus receives it: intervals 5m, variables `.*`."""
    return GRAFANA_VARIABLE.sub(".*", GRAFANA_INTERVALS.sub("5m", expr))


def dashboard_queries() -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target and every query variable of every dashboard."""
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                yield f"{path.name}: {panel['title']}", substitute(target["expr"])
        for variable in board["templating"]["list"]:
            if variable["type"] != "query":
                continue
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            match = LABEL_VALUES.match(text)
            assert match, f"{path.name}: variable {variable['name']}: {text}"
            if match["selector"]:
                yield f"{path.name}: ${variable['name']}", substitute(match["selector"])


PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
PROMQL_WORDS = PROMQL_KEYWORDS | {"and", "or", "unless", "offset", "bool", "inf", "nan"}


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (not functions, labels or keywords)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"\{[^}]*\}", "{}", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "[]", text)  # ranges and subqueries
    clause = "|".join(PROMQL_KEYWORDS)
    text = re.sub(rf"\b({clause})\s*\([^)]*\)", " ", text)  # grouping label lists
    names = set()
    for match in re.finditer(r"(?<![\w:.])[A-Za-z_:][\w:]*", text):
        word = match.group()
        if word.lower() in PROMQL_WORDS or text[match.end() :].lstrip().startswith("("):
            continue
        names.add(word)
    return names


def registry_names() -> set[str]:
    """Names our processes expose: every module defining metrics imported, then read."""
    import wms

    for module in pkgutil.walk_packages(wms.__path__, "wms."):
        spec = importlib.util.find_spec(module.name)
        origin = spec.origin if spec else None
        if origin and origin.endswith(".py") and "prometheus_client" in Path(origin).read_text():
            importlib.import_module(module.name)
    from prometheus_client import REGISTRY

    names = set()
    for family in REGISTRY.collect():
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "summary": ("", "_sum", "_count"),
            "info": ("_info",),
        }.get(family.type, ("",))
        names.update(family.name + suffix for suffix in suffixes)
    return names


def exporter_names() -> set[str]:
    names = set()
    for path in EXPORTER_LISTS.glob("*.txt"):
        for line in path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                names.add(line.strip())
    return names


@pytest.fixture(scope="module")
def known_names() -> set[str]:
    recorded = {
        rule["record"] for group in rule_groups() for rule in group["rules"] if "record" in rule
    }
    return registry_names() | exporter_names() | recorded | SYNTHETIC
