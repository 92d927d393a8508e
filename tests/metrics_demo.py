"""The filled history shared by the report, CLI and dashboard tests (built once per session).

``examples/fill_demo.py`` plays three weeks of conversations through the real engine and
returns a ledger of what it played; the tests compute their expectations from that ledger.
"""

from __future__ import annotations

import importlib.util
import sys
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from zoneinfo import ZoneInfo

import pytest

ROOT = Path(__file__).resolve().parent.parent
TZ = ZoneInfo("America/Sao_Paulo")
START = datetime(2026, 3, 2, tzinfo=TZ)  # a Monday, midnight at the clinic
_CACHE: dict[str, Any] = {}


def fill_demo() -> ModuleType:
    """``examples/fill_demo.py`` as a module."""
    if "module" not in _CACHE:
        spec = importlib.util.spec_from_file_location("fill_demo", ROOT / "examples/fill_demo.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules["fill_demo"] = module
        spec.loader.exec_module(module)
        _CACHE["module"] = module
    return _CACHE["module"]  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """(data dir, ledger) of the demo history starting at :data:`START`."""
    if "demo" not in _CACHE:
        data = tmp_path_factory.mktemp("metrics-demo")
        _CACHE["demo"] = (data, fill_demo().fill(data, start=START))
    return _CACHE["demo"]  # type: ignore[no-any-return]
