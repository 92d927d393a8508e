"""The installed distribution: its metadata and the single-sourced ``__version__``."""

from __future__ import annotations

import tomllib
from importlib.metadata import metadata, version
from pathlib import Path

import clinicflow

ROOT = Path(__file__).resolve().parents[1]


def test_version_is_the_one_in_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert clinicflow.__version__ == version("clinicflow") == project["version"]


def test_metadata_a_pypi_user_expects() -> None:
    meta = metadata("clinicflow")
    assert meta["Author"] or meta["Author-email"]
    assert meta.get_all("Project-URL")
    classifiers = meta.get_all("Classifier") or []
    assert "Programming Language :: Python :: 3.11" in classifiers
    assert "Typing :: Typed" in classifiers
    assert "whatsapp" in (meta["Keywords"] or "")
