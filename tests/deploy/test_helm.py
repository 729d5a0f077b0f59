"""The Helm chart: linted and rendered by Helm's Go SDK (helm-python-sdk), every object
validated against Kubernetes 1.30 JSON schemas (kubernetes-validate, strict) or the
committed CRD schemas, and the platform policies asserted on the rendered objects."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import CHART, ENVIRONMENTS, REPO, require_module

helm = require_module("helm_python", "helm-python-sdk")
kubernetes_validate = require_module("kubernetes_validate", "kubernetes-validate")

KUBERNETES_VERSION = "1.30.0"
CRDS = Path(__file__).parent / "crds"
RELEASE = "wms"
Objects = list[dict[str, Any]]


def env_values(env: str) -> dict[str, Any]:
    values = yaml.safe_load((CHART / f"values-{env}.yaml").read_text())
    assert isinstance(values, dict)
    return values


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merge(result[key], value)
        else:
            result[key] = value
    return result


def render(values: dict[str, Any], namespace: str) -> Objects:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=namespace, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


@pytest.fixture(scope="module")
def rendered() -> dict[str, Objects]:
    return {env: render(env_values(env), f"wms-{env}") for env in ENVIRONMENTS}


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    schemas = {}
    for path in sorted(CRDS.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            api_version = f"{crd['spec']['group']}/{version['name']}"
            schema = strict(version["schema"]["openAPIV3Schema"])
            schemas[(api_version, crd["spec"]["names"]["kind"])] = schema
    return schemas


def strict(schema: dict[str, Any]) -> dict[str, Any]:
    """Unknown fields fail, as with `kubectl apply --validate=strict`."""
    schema = dict(schema)
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        schema.setdefault("additionalProperties", False)
        schema["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
    if isinstance(schema.get("items"), dict):
        schema["items"] = strict(schema["items"])
    return schema


def of_kind(objects: Objects, kind: str) -> Objects:
    return [o for o in objects if o["kind"] == kind]


def one(objects: Objects, kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    return found


def pod_specs(objects: Objects) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in {"Deployment", "Job"}:
            yield obj["metadata"]["name"], obj["spec"]["template"]["spec"]


def validate(obj: dict[str, Any], crds: dict[tuple[str, str], dict[str, Any]]) -> None:
    key = (obj["apiVersion"], obj["kind"])
    if key in crds:
        jsonschema.validate(obj, crds[key])
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


# ---------------------------------------------------------------- lint and validation


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_helm_lint_is_clean(env: str) -> None:
    report = helm.lint(
        CHART, env_values(env), strict=True, namespace=f"wms-{env}",
        kube_version=f"v{KUBERNETES_VERSION}",
    )  # fmt: skip
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []
    print(f"helm lint clean: values-{env}.yaml (strict, Kubernetes {KUBERNETES_VERSION})")


def test_every_object_is_valid_in_every_environment(rendered: dict[str, Objects]) -> None:
    crds = crd_schemas()
    assert {kind for _, kind in crds} == {"ServiceMonitor", "PrometheusRule", "HTTPRoute"}
    counts = {}
    for env, objects in rendered.items():
        for obj in objects:
            validate(obj, crds)
        counts[env] = len(objects)
    # The Gateway API alternative is off in every environment: render it once too.
    gateway = render(
        merge(env_values("prod"), {"httpRoute": {"enabled": True}, "ingress": {"enabled": False}}),
        "wms-prod",
    )
    (route,) = of_kind(gateway, "HTTPRoute")
    for obj in gateway:
        validate(obj, crds)
    custom = sum(
        1 for objects in rendered.values() for o in objects if (o["apiVersion"], o["kind"]) in crds
    )
    total = sum(counts.values())
    detail = ", ".join(f"{env} {n}" for env, n in counts.items())
    print(
        f"{total} objects × {len(ENVIRONMENTS)} environments valid ({detail}; Kubernetes "
        f"{KUBERNETES_VERSION} strict schemas, {custom} custom resources + 1 HTTPRoute "
        f"against tests/deploy/crds)"
    )
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == f"{RELEASE}-api"


def test_committed_crds_are_valid_crds() -> None:
    for path in sorted(CRDS.glob("*.yaml")):
        kubernetes_validate.validate(yaml.safe_load(path.read_text()), KUBERNETES_VERSION, True)


# ---------------------------------------------------------------- policies


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pods_run_non_root_read_only_with_seccomp_and_no_capabilities(
    rendered: dict[str, Objects], env: str
) -> None:
    specs = dict(pod_specs(rendered[env]))
    assert set(specs) == {f"{RELEASE}-api", f"{RELEASE}-worker", f"{RELEASE}-migrate"}
    for name, spec in specs.items():
        assert spec["automountServiceAccountToken"] is False, name
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, name
        assert pod["runAsUser"] == 1000, name
        assert pod["seccompProfile"]["type"] == "RuntimeDefault", name
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc["runAsNonRoot"] is True, name
            assert sc["runAsUser"] == 1000, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert sc["seccompProfile"]["type"] == "RuntimeDefault", name
            limits = container["resources"]["limits"]
            assert limits["cpu"], name
            assert limits["memory"], name
            assert container["resources"]["requests"], name
            image = container["image"]
            assert ":" in image, image
            assert not image.endswith(":latest"), image
            mounts = {m["mountPath"] for m in container["volumeMounts"]}
            assert mounts == {"/tmp", "/app/cache"}, name
        assert all(v["emptyDir"]["sizeLimit"] for v in spec["volumes"]), name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_api_probes_shutdown_and_rollout(rendered: dict[str, Objects], env: str) -> None:
    deployment = one(rendered[env], "Deployment", f"{RELEASE}-api")
    spec = deployment["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "metrics": 9090}
    config = one(rendered[env], "ConfigMap", RELEASE)["data"]
    drain = int(config["WMS_DRAIN_SECONDS"])
    shutdown = int(config["WMS_SHUTDOWN_TIMEOUT_SECONDS"])
    sleep = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep[0] == "sleep"
    assert int(sleep[1]) > 0
    assert pod["terminationGracePeriodSeconds"] >= int(sleep[1]) + drain + shutdown
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "topology.kubernetes.io/zone"
    anti = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert config["WMS_MIGRATE_ON_START"] == "false"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_api_pods_shed_load_past_max_in_flight(rendered: dict[str, Objects], env: str) -> None:
    deployment = one(rendered[env], "Deployment", f"{RELEASE}-api")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    values = {e["name"]: e.get("value") for e in container["env"]}
    assert values["WMS_MAX_IN_FLIGHT"] == "256"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pdb_network_policy_and_service_account(rendered: dict[str, Objects], env: str) -> None:
    objects = rendered[env]
    assert of_kind(objects, "PodDisruptionBudget")
    policies = of_kind(objects, "NetworkPolicy")
    assert {t for p in policies for t in p["spec"]["policyTypes"]} == {"Ingress", "Egress"}
    egress = one(objects, "NetworkPolicy", f"{RELEASE}-egress")["spec"]["egress"]
    ports = {p["port"] for rule in egress for p in rule["ports"]}
    assert {53, 5432, 6379, 4317} <= ports
    api = one(objects, "NetworkPolicy", f"{RELEASE}-api")["spec"]["ingress"]
    sources = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in api
        for peer in rule["from"]
    }
    assert sources == {"ingress-nginx", "monitoring"}
    for account in of_kind(objects, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False


def test_production_autoscales_3_to_20_on_cpu_without_fixed_replicas(
    rendered: dict[str, Objects],
) -> None:
    prod = rendered["prod"]
    (hpa,) = of_kind(prod, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 20)
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["behavior"]["scaleUp"]["policies"][0]["value"] == 50
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    for env, objects in rendered.items():
        deployment = one(objects, "Deployment", f"{RELEASE}-api")
        has_hpa = bool(of_kind(objects, "HorizontalPodAutoscaler"))
        assert ("replicas" in deployment["spec"]) is not has_hpa, env


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_ingress_routes_only_api_and_health_with_a_known_rate_limit(
    rendered: dict[str, Objects], env: str
) -> None:
    (ingress,) = of_kind(rendered[env], "Ingress")
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/limit-rps"]) > 0
    assert "nginx.ingress.kubernetes.io/rate-limit" not in annotations
    assert annotations["cert-manager.io/cluster-issuer"]
    assert ingress["spec"]["ingressClassName"] == "nginx"
    paths = {p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert paths == {"/api", "/health"}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_migration_is_a_pre_install_pre_upgrade_hook_with_its_own_account_and_config(
    rendered: dict[str, Objects], env: str
) -> None:
    hooks = [o for o in rendered[env] if "helm.sh/hook" in o["metadata"].get("annotations", {})]
    weights = {}
    for hook in hooks:
        annotations = hook["metadata"]["annotations"]
        assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"
        weights[hook["kind"]] = int(annotations["helm.sh/hook-weight"])
    assert set(weights) == {"ServiceAccount", "ConfigMap", "Job"}
    assert weights["ServiceAccount"] < weights["Job"]
    assert weights["ConfigMap"] < weights["Job"]
    job = one(rendered[env], "Job", f"{RELEASE}-migrate")
    pod = job["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == f"{RELEASE}-migrate"
    assert pod["containers"][0]["args"] == ["migrate"]
    env_names = {e["name"] for e in pod["containers"][0]["env"]}
    assert "DATABASE_ADMIN_URL" in env_names


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_secrets_come_only_from_the_existing_secret(rendered: dict[str, Objects], env: str) -> None:
    assert of_kind(rendered[env], "Secret") == []
    for name, spec in pod_specs(rendered[env]):
        for container in spec["containers"]:
            refs = {
                e["name"]: e["valueFrom"]["secretKeyRef"]["name"]
                for e in container["env"]
                if "valueFrom" in e
            }
            assert {"DATABASE_URL", "WMS_API_KEY_PEPPER"} <= set(refs), name
            assert set(refs.values()) == {"wms-secrets"}, name


def test_prometheus_rule_comes_from_the_observability_rules_file(
    rendered: dict[str, Objects],
) -> None:
    (rule,) = of_kind(rendered["prod"], "PrometheusRule")
    source = yaml.safe_load((REPO / "deploy/monitoring/prometheus-rules.yaml").read_text())
    assert rule["spec"]["groups"] == source["groups"]
    assert of_kind(rendered["prod"], "ServiceMonitor")


def test_values_schema_refuses_latest_and_the_budget_refuses_too_many_connections() -> None:
    with pytest.raises(helm.HelmValuesError, match="tag"):
        render({"image": {"tag": "latest"}}, "wms-dev")
    with pytest.raises(helm.HelmRenderError, match="connection budget exceeded"):
        render(merge(env_values("prod"), {"api": {"autoscaling": {"maxReplicas": 40}}}), "wms-prod")
