"""The training corpus shipped with clinicflow: how patients write each intent.

Three YAML files under ``clinicflow/corpus/`` (package data, read-only):

- ``intents.yaml`` — ``intents: {name: [phrasing, ...]}`` for every intent but ``urgent``;
- ``safety.yaml`` — ``emergencies: {category: [phrasing, ...]}`` (intent ``urgent``) and
  ``lookalikes: [{text, intent}]``: alarming-looking messages that are not emergencies;
- ``statements.yaml`` — ``statements: [...]``: answers and accounts that ask for nothing (a
  name, an age, a period, "tenho calorão e não durmo"), the model's :data:`INFORM` class.

They were written apart from the evaluation sets in ``tests/data/`` (tuning and blind test),
which never train anything. A catalog's own intent examples and FAQ questions extend the
corpus at training time (:mod:`clinicflow.understanding.classifier`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

import yaml

from clinicflow.errors import ScriptError
from clinicflow.model import EMERGENCY_CATEGORIES, INTENTS

CATEGORIES = EMERGENCY_CATEGORIES
#: The model's label for a message that asks for nothing: she answers or tells her situation.
#: Not an intent of the vocabulary: the cascade reads it as "no intent, but understood".
INFORM = "inform"


@dataclass(frozen=True)
class Example:
    """One labelled phrasing: its intent, and its emergency category when it is urgent."""

    text: str
    intent: str
    category: str | None = None
    lookalike: bool = False


@dataclass(frozen=True)
class Corpus:
    """The shipped examples and a digest of their content (what a trained model is keyed by)."""

    examples: tuple[Example, ...]
    digest: str

    def of_intent(self, intent: str) -> list[Example]:
        return [example for example in self.examples if example.intent == intent]


_FILES = ("intents.yaml", "safety.yaml", "statements.yaml")


def _source(name: str) -> str:
    return resources.files("clinicflow").joinpath("corpus", name).read_text("utf-8")


def _read(name: str) -> object:
    return yaml.safe_load(_source(name))


@lru_cache(maxsize=1)
def corpus_digest() -> str:
    """A digest of the shipped corpus files, without parsing them (what models are keyed by;
    reading the YAML costs most of a second, and a cached model does not need it)."""
    return hashlib.sha256("\0".join(_source(name) for name in _FILES).encode()).hexdigest()[:16]


def _bad(name: str, what: str) -> ScriptError:
    return ScriptError(f"the shipped corpus {name} is malformed: {what}")


@lru_cache(maxsize=1)
def load_corpus() -> Corpus:
    """The corpus inside the installed package (read once per process).

    Raises:
        ScriptError: a corpus file is malformed (a packaging error, never a user's).
    """
    intents_doc = _read("intents.yaml")
    safety_doc = _read("safety.yaml")
    examples: list[Example] = []
    table = intents_doc.get("intents") if isinstance(intents_doc, dict) else None
    if not isinstance(table, dict):
        raise _bad("intents.yaml", "no 'intents' mapping")
    for intent, texts in table.items():
        if intent not in INTENTS or not isinstance(texts, list):
            raise _bad("intents.yaml", f"unknown intent or list {intent!r}")
        examples += [Example(str(text), intent) for text in texts]
    if not isinstance(safety_doc, dict):
        raise _bad("safety.yaml", "not a mapping")
    for category, texts in (safety_doc.get("emergencies") or {}).items():
        if category not in CATEGORIES or not isinstance(texts, list):
            raise _bad("safety.yaml", f"unknown category {category!r}")
        examples += [Example(str(text), "urgent", category) for text in texts]
    for item in safety_doc.get("lookalikes") or []:
        if not isinstance(item, dict) or item.get("intent") not in INTENTS:
            raise _bad("safety.yaml", f"bad look-alike {item!r}")
        examples.append(Example(str(item["text"]), str(item["intent"]), lookalike=True))
    statements_doc = _read("statements.yaml")
    statements = statements_doc.get("statements") if isinstance(statements_doc, dict) else None
    if not isinstance(statements, list):
        raise _bad("statements.yaml", "no 'statements' list")
    examples += [Example(str(text), INFORM) for text in statements]
    return Corpus(tuple(examples), corpus_digest())
