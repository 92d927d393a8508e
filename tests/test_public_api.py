"""clinicflow's public names: ``__all__`` is sorted and every name in it exists."""

from __future__ import annotations

import clinicflow


def test_all_is_sorted_and_unique() -> None:
    names = list(clinicflow.__all__)
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_every_public_name_exists() -> None:
    missing = [name for name in clinicflow.__all__ if getattr(clinicflow, name, None) is None]
    assert not missing, f"in __all__ but not importable: {missing}"


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from clinicflow import *", namespace)
    public = {name for name in namespace if not name.startswith("__")}
    assert public == set(clinicflow.__all__)
