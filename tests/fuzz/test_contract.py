"""Contract fuzzing: schemathesis against a live ``wms-server`` and its ``/openapi.json``.

Every phase runs (explicit examples, coverage, fuzzing, stateful through the OpenAPI
links) as the admin of a seeded tenant (``world.py``). It fails on any check failure
(``schemathesis.toml``: 5xx, undocumented status, content type, header or response
schema mismatch, ignored auth, wrong ``Allow``, an error that is not problem+json), on
fewer than ``MIN_CASES`` generated cases, and on any operation that never answered 2xx.
``make fuzz`` runs it alone and prints the summary; ``WMS_FUZZ_MAX_EXAMPLES`` and
``WMS_FUZZ_SEED`` change the depth and the (otherwise fixed) seed.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fuzz.conftest import FuzzTarget
from tests.fuzz.world import seed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
MIN_CASES = 1000
MAX_EXAMPLES = os.environ.get("WMS_FUZZ_MAX_EXAMPLES", "10")
SEED = os.environ.get("WMS_FUZZ_SEED", "20261129")


def operations(base_url: str) -> list[str]:
    """Every operation of the served OpenAPI document, as ``METHOD /path``."""
    document = httpx.get(base_url + "/openapi.json", timeout=10).json()
    return sorted(
        f"{method.upper()} {path}"
        for path, item in document["paths"].items()
        for method in item
        if method in {"get", "put", "post", "patch", "delete"}
    )


def shares(calls_file: Path) -> dict[str, tuple[int, int]]:
    """``{operation: (responses, 2xx responses)}`` from the ``after_call`` records."""
    counts: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    if calls_file.exists():
        for line in calls_file.read_text().splitlines():
            call = json.loads(line)
            counts[call["operation"]][0] += 1
            counts[call["operation"]][1] += 200 <= call["status"] < 300
    return {operation: (total, ok) for operation, (total, ok) in counts.items()}


def summary(report: dict[str, Any], seen: dict[str, tuple[int, int]], ops: list[str]) -> str:
    """The run in a few lines: cases, failures, and each operation's share of 2xx."""
    cases = report["test_cases"]
    lines = [
        f"contract fuzzing: schemathesis {report['schemathesis_version']}, seed {report['seed']}, "
        f"{report['running_time']:.0f} s",
        f"  cases generated: {cases['generated']}, responses checked: "
        f"{sum(total for total, _ in seen.values())}",
        f"  failures: {cases['unique_failures']} unique"
        + "".join(f"\n    {f['code']} {f['title']}: {f['operations']}" for f in report["failures"]),
        f"  errors: {len(report['errors'])}",
        "  2xx share per operation:",
    ]
    for operation in ops:
        total, ok = seen.get(operation, (0, 0))
        share = f"{ok / total:6.1%}" if total else "   n/a"
        lines.append(f"    {share} {ok:4d}/{total:<4d} {operation}")
    return "\n".join(lines)


def test_the_live_server_keeps_its_openapi_contract_under_fuzzing(
    fuzz_target: FuzzTarget, tmp_path: Path
) -> None:
    examples_file, calls_file = tmp_path / "examples.json", tmp_path / "calls.jsonl"
    report_file = tmp_path / "schemathesis.json"
    examples_file.write_text(json.dumps(seed(fuzz_target.base_url, fuzz_target.key)))
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "WMS_FUZZ_EXAMPLES": str(examples_file),
        "WMS_FUZZ_CALLS": str(calls_file),
        "PYTHONPATH": str(PROJECT_ROOT),
        "NO_COLOR": "1",
    }
    started = time.monotonic()
    run = subprocess.run(
        [SCHEMATHESIS, "--config-file", str(HERE / "schemathesis.toml"), "run",
         f"{fuzz_target.base_url}/openapi.json",
         "--header", f"Authorization: Bearer {fuzz_target.key}",
         "--max-examples", MAX_EXAMPLES, "--seed", SEED,
         "--report", "json", "--report-json-path", str(report_file)],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=840, check=False,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    output = run.stdout + run.stderr
    assert report_file.exists(), f"schemathesis wrote no report:\n{output[-20000:]}"
    report = json.loads(report_file.read_text())
    ops = operations(fuzz_target.base_url)
    seen = shares(calls_file)
    text = summary(report, seen, ops)
    print(f"\n{text}\n  wall time of the run: {elapsed:.0f} s")

    assert not report["failures"], f"{text}\n\n{output[-20000:]}"
    assert run.returncode == 0, output[-20000:]
    assert not report["errors"], report["errors"]
    assert report["test_cases"]["generated"] >= MIN_CASES, text
    never = [operation for operation in ops if seen.get(operation, (0, 0))[1] == 0]
    assert not never, f"operations that never answered 2xx: {never}\n{text}"
