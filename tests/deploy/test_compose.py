"""compose.yaml: structure, pinned images, defined variables, one set of migrations."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.conftest import REPO

COMPOSE = REPO / "compose.yaml"
ENV_EXAMPLE = REPO / ".env.example"
# ${VAR}, ${VAR:-default}, ${VAR:?message}; `$${VAR}` is an escaped literal for the shell.
VARIABLE = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")
EXPECTED_SERVICES = {
    "postgres", "redis", "kafka", "flyway", "migrate", "wms-api", "wms-worker",
    "prometheus", "alertmanager", "grafana", "jaeger",
}  # fmt: skip
HEALTHY_CONDITIONS = {"service_healthy", "service_completed_successfully"}


def example_env() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value.strip()
    return pairs


def interpolate(text: str, env: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name, operator, argument = match.groups()
        if name in env and (env[name] or operator != ":-"):
            return env[name]
        if operator in {":-", "-"}:
            return argument
        raise AssertionError(f"${{{name}}} is used but not defined in .env.example")

    return VARIABLE.sub(replace, text).replace("$$", "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = yaml.safe_load(interpolate(COMPOSE.read_text(), example_env()))
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


def one_shot(name: str, services: dict[str, dict[str, Any]]) -> bool:
    return any(
        (dep.get("condition") if isinstance(dep, dict) else None)
        == "service_completed_successfully"
        for service in services.values()
        for dep_name, dep in (service.get("depends_on") or {}).items()
        if dep_name == name
    )


def test_no_obsolete_version_key_and_all_services_present(compose: dict[str, Any]) -> None:
    assert "version" not in compose
    assert set(compose["services"]) == EXPECTED_SERVICES


def test_every_variable_is_defined_in_env_example() -> None:
    used = {m.group(1) for m in VARIABLE.finditer(COMPOSE.read_text())}
    defined = set(example_env())
    assert used - defined == set()
    # Secrets are required (`:?`), so a missing .env stops compose with the variable's name.
    for secret in ("POSTGRES_PASSWORD", "WMS_API_KEY_PEPPER", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(rf"\$\{{{secret}:\?", COMPOSE.read_text()), secret
    assert len(example_env()["WMS_API_KEY_PEPPER"]) >= 32


def test_the_secret_env_file_is_not_committed() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--", ".env"], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert tracked.stdout.strip() == ""


def test_images_are_pinned_never_latest(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no repository"
        assert tag, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image}"
        assert re.match(r"v?\d+(\.\d+)+", tag), f"{name}: {image}"
    assert services["postgres"]["image"].startswith("postgres:16.")
    assert services["redis"]["image"].startswith("redis:7.")
    assert services["flyway"]["image"].startswith("flyway/flyway:")


def test_healthchecks_and_healthy_dependencies(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck", {})
        if one_shot(name, services):
            assert service.get("restart") == "no", name
            continue
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} has its healthcheck disabled"
        for dep_name, dep in (service.get("depends_on") or {}).items():
            assert isinstance(dep, dict), f"{name} -> {dep_name}: use a condition"
            assert dep["condition"] in HEALTHY_CONDITIONS, f"{name} -> {dep_name}"
            if dep["condition"] == "service_healthy":
                assert services[dep_name].get("healthcheck", {}).get("test"), dep_name
    for app in ("wms-api", "wms-worker"):
        deps = services[app]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert services["wms-api"]["healthcheck"]["test"] == ["CMD", "wms-server", "health"]
    assert services["migrate"]["depends_on"]["flyway"]["condition"] == (
        "service_completed_successfully"
    )


def test_no_bind_mount_over_the_application(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, _, target = str(volume).partition(":")
            target = target.split(":")[0]
            assert source not in {".", "./"}, f"{name}: {volume}"
            assert target != "/app", f"{name}: {volume}"
            assert not target.startswith("/app/"), f"{name}: {volume}"


def test_app_containers_run_like_the_chart(services: dict[str, dict[str, Any]]) -> None:
    for name in ("migrate", "wms-api", "wms-worker"):
        service = services[name]
        assert service["user"] == "1000:1000"
        assert service["read_only"] is True
        assert service["cap_drop"] == ["ALL"]
        assert {entry.split(":")[0] for entry in service["tmpfs"]} == {"/tmp", "/app/cache"}
        assert service["environment"]["WMS_MIGRATE_ON_START"] == "false"


def test_flyway_and_wms_server_migrate_use_the_same_files(
    services: dict[str, dict[str, Any]],
) -> None:
    flyway = services["flyway"]
    flyway_sources = {str(v).split(":")[0]: str(v).split(":")[1] for v in flyway["volumes"]}
    assert flyway_sources == {"./migrations": "/flyway/sql"}
    assert flyway["environment"]["FLYWAY_SCHEMAS"] == "wms"
    assert flyway["environment"]["FLYWAY_INIT_SQL"] == "SET ROLE wms_owner"
    assert flyway["command"] == ["migrate"]

    migrate = services["migrate"]
    assert migrate["command"] == ["migrate"]
    (mount,) = migrate["volumes"]
    source, target, mode = str(mount).split(":")
    assert (source, mode) == ("./migrations", "ro")
    # The mount replaces the copy packaged in the image (force-include → wms/migrations).
    python = re.search(r"python:(\d+\.\d+)", (REPO / "Dockerfile").read_text())
    assert python is not None
    assert target == f"/opt/venv/lib/python{python.group(1)}/site-packages/wms/migrations"
    folder = (REPO / source).resolve()
    assert folder == REPO / "migrations"
    assert sorted(folder.glob("V*__*.sql")), "no Flyway-format migrations found"


def test_kafka_runs_kraft_and_advertises_a_host_reachable_listener(
    services: dict[str, dict[str, Any]],
) -> None:
    kafka = services["kafka"]["environment"]
    assert "zookeeper" not in json.dumps(kafka).lower()
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    advertised = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["PLAINTEXT"] == "kafka:29092"
    assert advertised["PLAINTEXT_HOST"].startswith("localhost:")
    assert services["wms-api"]["environment"]["KAFKA_BROKERS"] == "kafka:29092"


def test_observability_files_are_mounted_and_exist(services: dict[str, dict[str, Any]]) -> None:
    mounted = [
        str(volume).split(":")[0]
        for name in ("prometheus", "alertmanager", "grafana")
        for volume in services[name]["volumes"]
        if str(volume).startswith("./")
    ]
    assert sorted(mounted) == [
        "./deploy/monitoring/alertmanager.yaml",
        "./deploy/monitoring/dashboards",
        "./deploy/monitoring/prometheus-rules.yaml",
    ]
    for path in mounted:
        assert (REPO / path).exists(), path
    for dashboard in (REPO / "deploy/monitoring/dashboards").glob("*.json"):
        assert json.loads(dashboard.read_text())["uid"]
    rules = yaml.safe_load((REPO / "deploy/monitoring/prometheus-rules.yaml").read_text())
    assert isinstance(rules["groups"], list)


def test_inline_configs_parse(compose: dict[str, Any]) -> None:
    for name, config in compose["configs"].items():
        if name.endswith("_roles"):
            assert "CREATE ROLE wms_owner" in config["content"]
            continue
        assert isinstance(yaml.safe_load(config["content"]), dict), name
    prometheus = yaml.safe_load(compose["configs"]["prometheus_config"]["content"])
    targets = {
        target
        for job in prometheus["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {"wms-api:9090", "wms-worker:9090"}
    print(f"compose structure test passed: {Path(COMPOSE).name}")
