"""Helpers for the infrastructure tests (Terraform, workflow, post-deploy, smoke).

Not a conftest: the test modules import what they need from here.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "deploy" / "terraform"
SCRIPTS = ROOT / "deploy" / "scripts"
WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"
CHECKOV_VENV = Path("/tmp/wms-checkov-venv")


def unquote(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals; strip them (recursively)."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, list):
        return [unquote(v) for v in value]
    if isinstance(value, dict):
        return {unquote(k): unquote(v) for k, v in value.items() if k != "__is_block__"}
    return value


def tool(name: str) -> str | None:
    """A tool from the project venv, else from PATH."""
    candidate = Path(sys.executable).with_name(name)
    if candidate.exists():
        return str(candidate)
    return shutil.which(name)


def ensure_checkov() -> tuple[str | None, str]:
    """checkov in its own venv (it pins its own hcl2 fork); (path, reason if missing)."""
    binary = CHECKOV_VENV / "bin" / "checkov"
    if binary.exists():
        return str(binary), ""
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", "--clear", str(CHECKOV_VENV)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [str(CHECKOV_VENV / "bin" / "pip"), "install", "--quiet", "checkov"],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        return None, f"checkov could not be installed in {CHECKOV_VENV}: {exc} {detail[-500:]!r}"
    return (str(binary), "") if binary.exists() else (None, "checkov not found after install")
