"""Schemathesis hooks of the contract fuzzer (loaded through ``SCHEMATHESIS_HOOKS``).

- ``before_load_schema`` gives operations the seeded world's objects as explicit
  examples (``WMS_FUZZ_EXAMPLES``, written by the test; see ``world.py``).
- ``after_call`` records each response's operation and status (``WMS_FUZZ_CALLS``), for
  the per-operation 2xx summary.
- ``problem_json_errors`` checks that every error is RFC 9457 problem+json.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import schemathesis

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://wms.example/problems/"


@schemathesis.hook
def before_load_schema(context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    """Put the seeded objects in as each operation's examples (parameters and body)."""
    source = os.environ.get("WMS_FUZZ_EXAMPLES")
    if not source:
        return
    for label, example in json.loads(Path(source).read_text()).items():
        method, path = label.split(" ", 1)
        operation = raw_schema["paths"][path][method.lower()]
        for parameter in operation.get("parameters", []):
            value = example.get(parameter["in"], {}).get(parameter["name"])
            if value is not None:
                parameter["example"] = value
                parameter.get("schema", {}).pop("examples", None)  # this object, no other
        if "body" in example:
            media = operation["requestBody"]["content"]["application/json"]
            media.pop("examples", None)
            media["example"] = example["body"]


@schemathesis.hook
def after_call(
    context: schemathesis.HookContext, case: schemathesis.Case, response: schemathesis.Response
) -> None:
    """Append ``{"operation", "status"}`` of this response to the calls file."""
    target = os.environ.get("WMS_FUZZ_CALLS")
    if target:
        record = {"operation": case.operation.label, "status": response.status_code}
        with Path(target).open("a") as calls:
            calls.write(json.dumps(record) + "\n")


@schemathesis.check
def problem_json_errors(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """Every 4xx/5xx is problem+json with ``type``, ``title``, ``status`` and ``detail``."""
    if response.status_code < 400:
        return None
    media_type = response.headers.get("content-type", [""])[0].split(";")[0].strip()
    if media_type != PROBLEM_MEDIA_TYPE:
        raise AssertionError(f"error {response.status_code} is {media_type!r}, not problem+json")
    body = response.json()
    missing = {"type", "title", "status", "detail"} - set(body)
    if missing:
        raise AssertionError(f"problem without {sorted(missing)}")
    if body["status"] != response.status_code or not body["type"].startswith(PROBLEM_BASE):
        raise AssertionError(f"problem status/type do not match: {body}")
    return True
