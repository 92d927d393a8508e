"""The held-out evaluation set (tests/data/intent_eval.yaml) stays held out.

None of its texts may appear, after :func:`clinicflow.text.normalize`, among the catalog's
intent examples, FAQ questions or trigger examples: the similarity index is built from those,
so an overlap would let the evaluation grade the index on its own training data. Accuracy is
measured by the benchmark, never asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from clinicflow.loader import load_catalog
from clinicflow.text import normalize

EVAL = Path(__file__).parent / "data" / "intent_eval.yaml"
INTENTS = [
    "greeting",
    "thanks",
    "goodbye",
    "affirm",
    "deny",
    "ask_price",
    "ask_info",
    "ask_location",
    "ask_hours",
    "ask_insurance",
    "schedule",
    "reschedule_cancel",
    "human",
    "complaint",
    "urgent",
    "medical_advice",
    "bot_check",
    "opt_out",
    "out_of_scope",
]


def _catalog_texts() -> dict[str, list[str]]:
    """Normalised catalog text → where it comes from."""
    catalog = load_catalog(None)
    seen: dict[str, list[str]] = {}

    def add(text: str, where: str) -> None:
        seen.setdefault(normalize(text), []).append(where)

    for intent in catalog.clinic.intents:
        for example in intent.examples:
            add(example, f"clinic.yaml intents.{intent.name}.examples")
    for faq in catalog.clinic.faq:
        for question in faq.questions:
            add(question, f"clinic.yaml faq {faq.id}")
    for script in catalog.scripts:
        for faq in script.faq:
            for question in faq.questions:
                add(question, f"{Path(script.path).name} faq {faq.id}")
        for example in script.triggers.examples:
            add(example, f"{Path(script.path).name} triggers.examples")
    return seen


def _eval_sections() -> dict[str, list[str]]:
    data = yaml.safe_load(EVAL.read_text("utf-8"))
    sections = {"cases": [str(case["text"]) for case in data["cases"]]}
    for name, texts in (data.get("red_flags") or {}).items():
        sections[f"red_flags.{name}"] = [str(text) for text in texts]
    return sections


SECTIONS = _eval_sections()
CATALOG = _catalog_texts()


def test_eval_file_shape() -> None:
    data = yaml.safe_load(EVAL.read_text("utf-8"))
    assert data["cases"], "no cases"
    for case in data["cases"]:
        assert set(case) >= {"text", "intent"}, case
        assert case["intent"] in INTENTS, case
        assert str(case["text"]).strip()


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_eval_texts_are_not_catalog_examples(section: str) -> None:
    overlaps = [
        f"{text!r} == {', '.join(CATALOG[normalize(text)])}"
        for text in SECTIONS[section]
        if normalize(text) in CATALOG
    ]
    assert not overlaps, "held-out texts found in the catalog:\n" + "\n".join(overlaps)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_eval_texts_are_unique(section: str) -> None:
    texts = [normalize(text) for text in SECTIONS[section]]
    repeated = sorted({t for t in texts if texts.count(t) > 1})
    assert not repeated, f"repeated in {section}: {repeated}"
