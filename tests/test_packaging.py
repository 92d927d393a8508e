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


def test_every_package_is_installed_inside_the_namespace() -> None:
    """The wheel's package list (pyproject's ``[tool.setuptools] packages``; the editable
    install the tests run from would hide a missing one) holds every package on disk, and
    nothing outside ``clinicflow``."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    assert {name.split(".")[0] for name in listed} == {"clinicflow"}
    mapped = setuptools.get("package-dir", {})
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "clinicflow").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    on_disk |= {
        f"{package}.{'.'.join(init.parent.relative_to(ROOT / folder).parts)}".rstrip(".")
        for package, folder in mapped.items()
        for init in (ROOT / folder).rglob("__init__.py")
    }
    assert on_disk == listed, (on_disk - listed, listed - on_disk)
    assert {"clinicflow.runner", "clinicflow.dialogue", "clinicflow.scripts_catalog"} <= listed
