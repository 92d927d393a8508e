"""The evaluation sets stay apart from what the model learns from.

Training data (the shipped corpus and the catalog's own intent examples, keywords, FAQ
questions and red-flag phrases), the tuning sets (``understanding_tune.yaml``, thresholds are
chosen on it; ``safety_tune.yaml``, emergencies and look-alikes in everyday words, signs and
context mended on it) and the test sets (``understanding_blind.yaml``, written without seeing the
catalog or the corpus; the older ``intent_eval*.yaml``) are separate files by separate
writers. Independent writers still write some of the same messages ("oi", "qual o valor?"):
``bench/understanding.py`` reports each figure on the whole set and on the cases whose text is
not in the training data. The only quality asserted here is the safety floor on the tuning sets
(every emergency urgent, at most one look-alike in fifty flagged), so a change that loses an
emergency the thresholds were chosen to catch fails the suite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.model import EMERGENCY_CATEGORIES, INTENTS

DATA = Path(__file__).parent / "data"
TUNE = DATA / "understanding_tune.yaml"
SAFETY_TUNE = DATA / "safety_tune.yaml"
SETS = {
    "tune": TUNE,
    "safety_tune": SAFETY_TUNE,
    "blind": DATA / "understanding_blind.yaml",
    "safety_blind": DATA / "safety_blind.yaml",
}


def _cases(path: Path) -> list[dict[str, object]]:
    return list(yaml.safe_load(path.read_text("utf-8"))["cases"])


@pytest.mark.parametrize("name", sorted(SETS))
def test_set_shape(name: str) -> None:
    for case in _cases(SETS[name]):
        assert str(case["text"]).strip(), case
        assert case["intent"] in INTENTS, case
        if case["intent"] == "urgent":
            assert case.get("category") in EMERGENCY_CATEGORIES, case
        else:
            assert "category" not in case, case


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    eng = Engine.from_catalog(None, data_dir=tmp_path_factory.mktemp("eval"), clock=ManualClock())
    yield eng
    eng.close_resources()


@pytest.mark.parametrize("path", [TUNE, SAFETY_TUNE], ids=["tune", "safety_tune"])
def test_safety_floor_on_the_tuning_sets(engine: Engine, path: Path) -> None:
    cases = _cases(path)
    missed = [c["text"] for c in cases if c["intent"] == "urgent"
              and not engine.classify(str(c["text"])).urgent]  # fmt: skip
    lookalikes = [c for c in cases if c.get("lookalike")]
    alarms = [c["text"] for c in lookalikes if engine.classify(str(c["text"])).urgent]
    assert not missed, f"emergencies not urgent: {missed}"
    assert len(alarms) <= len(lookalikes) / 50, f"look-alikes flagged: {alarms}"
