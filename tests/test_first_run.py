"""The first run in a data directory: one line says the model is being prepared, and
LanceDB's Rust log stays out of the secretary's terminal."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from runner_harness import data_dir, embedder, prebuilt  # noqa: F401 - fixtures

from clinicflow.engine import TRAINING_NOTICE, Engine
from clinicflow.loader import load_catalog
from clinicflow.model import Catalog
from clinicflow.understanding.classifier import IntentModel

# Writes a LanceDB table into a fresh folder, the way the index is first written.
_WRITE = """
import sys
import pyarrow as pa
from clinicflow.native import lancedb
db = lancedb().connect(sys.argv[1])
db.create_table("examples", pa.table({"text": ["oi"]}), mode="overwrite")
"""


def _first_write(folder: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in ("LANCE_LOG", "LANCEDB_LOG")}
    done = subprocess.run(
        [sys.executable, "-c", _WRITE, str(folder)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stderr


def test_lancedb_writes_no_warn_lines_unless_the_operator_asks(tmp_path: Path) -> None:
    assert "WARN" not in _first_write(tmp_path / "quiet.lance")
    # Her own setting wins (and proves the line exists to be silenced).
    assert "No existing dataset" in _first_write(tmp_path / "loud.lance", LANCEDB_LOG="warn")


def _with_new_example(catalog: Catalog, text: str) -> Catalog:
    """The catalog with one more intent example: a model not trained yet anywhere."""
    clinic = catalog.clinic
    first = clinic.intents[0]
    intents = (replace(first, examples=(*first.examples, text)), *clinic.intents[1:])
    return replace(catalog, clinic=replace(clinic, intents=intents))


def test_the_first_training_is_announced_once(
    data_dir: Path, embedder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog = load_catalog()
    Engine(catalog, data_dir=data_dir, embedder=embedder, progress=True).close_resources()
    assert TRAINING_NOTICE not in capsys.readouterr().err  # built already: nothing to say
    changed = _with_new_example(catalog, "queria ver um horário pra semana que vem, moça")
    assert not IntentModel.ready(changed, data_dir, embedder)
    Engine(changed, data_dir=data_dir, embedder=embedder, progress=True).close_resources()
    err = capsys.readouterr().err
    assert err.count(TRAINING_NOTICE) == 1 and "WARN" not in err
    assert IntentModel.ready(changed, data_dir, embedder)
    Engine(changed, data_dir=data_dir, embedder=embedder, progress=True).close_resources()
    assert TRAINING_NOTICE not in capsys.readouterr().err
