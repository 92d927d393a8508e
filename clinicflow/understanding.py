"""Understanding a patient's message, cheapest first, stopping when confident.

The cascade: a numbered choice or a yes/no word (``choice``) → keyword and phrase rules from
clinic.yaml (``rule``) → nearest neighbours over the embedded intent examples (``embedding``)
→ Gemini when configured (``llm``, see :mod:`clinicflow.gemini`) → ``fallback``. Red flags are
always checked by phrase, whatever the cascade decides. Thresholds come from clinic.yaml's
``understanding`` section; their defaults were measured with ``bench/understanding.py`` on the
held-out set in ``tests/data/intent_eval.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from clinicflow.model import FAQ, Catalog, Script
from clinicflow.text import PhraseMatcher, has_letters_or_digits, normalize, words

if TYPE_CHECKING:
    import numpy as np

    from clinicflow.index import Index

Source = Literal["choice", "rule", "embedding", "llm", "fallback"]

# When several rules fire, the first intent in this order wins: safety and people first.
PRIORITY: tuple[str, ...] = (
    "opt_out",
    "urgent",
    "human",
    "complaint",
    "medical_advice",
    "bot_check",
    "reschedule_cancel",
    "schedule",
    "ask_price",
    "ask_insurance",
    "ask_location",
    "ask_hours",
    "ask_info",
    "deny",
    "affirm",
    "goodbye",
    "thanks",
    "greeting",
    "out_of_scope",
)
# Intents that only colour a message ("oi, quanto custa?" is about the price).
_SOCIAL = {"greeting", "thanks", "affirm", "deny", "goodbye"}
QUESTION_INTENTS = {"ask_price", "ask_info", "ask_location", "ask_hours", "ask_insurance"}

_YES = {"sim", "claro", "isso", "aham", "uhum", "com certeza", "pode", "pode ser", "ok", "quero"}
_NO = {"nao", "nunca", "negativo", "de jeito nenhum", "nao quero"}
_YES_EMOJI = ("👍", "✅")
_NO_EMOJI = ("👎", "❌")
_NUMBER_RE = re.compile(r"^\s*(?:op[cç][aã]o\s*)?(\d{1,2})\s*[.)º°]?\s*$", re.IGNORECASE)
_KEYCAP_RE = re.compile(r"^\s*(\d)\ufe0f?\u20e3\s*$")


@dataclass(frozen=True)
class Understanding:
    """What the cascade made of one message."""

    intent: str | None
    confidence: float
    source: Source
    red_flags: tuple[str, ...] = ()
    choice: int | None = None  # a bare number the patient sent (1-based)
    faq: FAQ | None = None
    faq_score: float = 0.0
    scripts: tuple[str, ...] = ()  # scripts whose entry keywords the message names
    script_score: float = 0.0
    rule_intents: tuple[str, ...] = field(default=())

    @property
    def confident(self) -> bool:
        return self.source in ("choice", "rule", "llm") or (
            self.source == "embedding" and self.intent is not None
        )


def numbered_choice(text: str) -> int | None:
    """``"2"``, ``"opção 2"``, ``"2)"`` or a keycap emoji → 2; anything else → None."""
    match = _NUMBER_RE.match(text) or _KEYCAP_RE.match(text)
    return int(match.group(1)) if match else None


def yes_no(text: str) -> bool | None:
    """A bare yes or no answer (colloquial forms, emojis); None when it is anything else."""
    stripped = text.strip()
    if stripped in _YES_EMOJI:
        return True
    if stripped in _NO_EMOJI:
        return False
    norm = normalize(text)
    if norm in _YES or norm in {f"{y} {y}" for y in ("sim",)}:
        return True
    if norm in _NO:
        return False
    tokens = norm.split()
    if 0 < len(tokens) <= 4:
        if tokens[0] == "sim" and "nao" not in tokens:
            return True
        if tokens[0] == "nao" and "sim" not in tokens and "sei" not in tokens:
            return False
    return None


class Understander:
    """The cascade over one catalog. Built once per catalog; thread-safe (read-only)."""

    def __init__(self, catalog: Catalog, index: Index | None) -> None:
        self.catalog = catalog
        self.index = index
        self.thresholds = catalog.clinic.understanding
        self._rules = PhraseMatcher(
            (intent.name, keyword)
            for intent in catalog.clinic.intents
            for keyword in intent.keywords
        )
        self._clinic_flags = PhraseMatcher(
            (flag.id, phrase) for flag in catalog.clinic.red_flags for phrase in flag.phrases
        )
        self._script_flags = {
            script.id: PhraseMatcher(
                (flag.id, phrase) for flag in script.red_flags for phrase in flag.phrases
            )
            for script in catalog.scripts
        }
        self._triggers = PhraseMatcher(
            (script.id, keyword)
            for script in catalog.scripts
            for keyword in script.triggers.keywords
        )
        self._faqs: dict[tuple[str, str], FAQ] = {}
        for faq in catalog.clinic.faq:
            self._faqs[("clinic", faq.id)] = faq
        for script in catalog.scripts:
            for faq in script.faq:
                self._faqs[(script.id, faq.id)] = faq

    # -- the pieces -------------------------------------------------------------------------

    def red_flags(self, text: str, script: Script | None) -> tuple[str, ...]:
        found = self._clinic_flags.keys(text)
        if script is not None and script.id in self._script_flags:
            found += [f for f in self._script_flags[script.id].keys(text) if f not in found]
        return tuple(found)

    def rule_intents(self, text: str) -> list[str]:
        hits = set(self._rules.keys(text))
        return [intent for intent in PRIORITY if intent in hits]

    def script_mentions(self, text: str) -> tuple[str, ...]:
        return tuple(self._triggers.keys(text))

    def vector(self, text: str) -> np.ndarray | None:
        if self.index is None or not has_letters_or_digits(text):
            return None
        return self.index.embed(text[:1000])

    def nearest_intent(self, vector: np.ndarray) -> tuple[str | None, float]:
        """The intent of the nearest examples when the margin over the next intent is clear."""
        assert self.index is not None
        hits = self.index.search(vector, kinds=("intent",), k=8)
        if not hits:
            return None, 0.0
        best = hits[0]
        runner_up = next((h.score for h in hits if h.entry.key != best.entry.key), 0.0)
        accept = best.score >= self.thresholds.embedding_accept or (
            best.score >= self.thresholds.embedding_accept - 0.12
            and best.score - runner_up >= self.thresholds.embedding_margin
        )
        return (best.entry.key if accept else None), best.score

    def nearest_faq(self, vector: np.ndarray, script: Script | None) -> tuple[FAQ | None, float]:
        assert self.index is not None
        scopes = ["clinic"] + ([script.id] if script else [])
        hits = self.index.search(vector, kinds=("faq",), scopes=scopes, k=3)
        if not hits:
            return None, 0.0
        best = hits[0]
        faq = self._faqs.get((best.entry.scope, best.entry.key))
        return faq, best.score

    def faq_for_intent(self, intent: str, script: Script | None) -> FAQ | None:
        """The FAQ a rule-level question intent points to (the script's own first)."""
        pools = ([*script.faq] if script else []) + list(self.catalog.clinic.faq)
        return next((faq for faq in pools if faq.intent == intent), None)

    def nearest_script(self, vector: np.ndarray) -> tuple[str | None, float]:
        assert self.index is not None
        hits = self.index.search(vector, kinds=("trigger",), k=3)
        if not hits:
            return None, 0.0
        return hits[0].entry.key, hits[0].score

    # -- the cascade ------------------------------------------------------------------------

    def understand(
        self,
        text: str,
        *,
        script: Script | None = None,
        expects_choice: bool = False,
        expects_yes_no: bool = False,
    ) -> Understanding:
        """Run the local cascade on ``text`` in the context of the current script and step."""
        flags = self.red_flags(text, script)
        mentions = self.script_mentions(text)
        if not has_letters_or_digits(text):
            return Understanding(None, 0.0, "fallback", red_flags=flags)
        number = numbered_choice(text)
        if number is not None and expects_choice:
            return Understanding(None, 1.0, "choice", red_flags=flags, choice=number)
        answer = yes_no(text)
        if answer is not None and (expects_yes_no or len(words(text)) <= 2):
            intent = "affirm" if answer else "deny"
            return Understanding(intent, 1.0, "choice", red_flags=flags, scripts=mentions)
        rules = self.rule_intents(text)
        if flags and "urgent" not in rules:
            rules.insert(0, "urgent")
        base = Understanding(
            None,
            0.0,
            "fallback",
            red_flags=flags,
            choice=number,
            scripts=mentions,
            rule_intents=tuple(rules),
        )
        vector = self.vector(text)
        if vector is not None:
            faq, faq_score = self.nearest_faq(vector, script)
            if faq is not None and faq_score >= self.thresholds.faq_accept:
                base = replace(base, faq=faq, faq_score=faq_score)
            if not mentions:
                found, score = self.nearest_script(vector)
                if found and score >= self.thresholds.route_accept:
                    base = replace(base, scripts=(found,), script_score=score)
        substantive = [intent for intent in rules if intent not in _SOCIAL]
        if substantive or rules:
            chosen = (substantive or rules)[0]
            confidence = 0.95 if len(substantive) <= 1 else 0.85
            result = replace(base, intent=chosen, confidence=confidence, source="rule")
            if chosen in QUESTION_INTENTS and result.faq is None:
                result = replace(result, faq=self.faq_for_intent(chosen, script))
            return result
        if vector is not None:
            intent, score = self.nearest_intent(vector)
            if intent is not None:
                result = replace(
                    base, intent=intent, confidence=round(score, 3), source="embedding"
                )
                if intent in QUESTION_INTENTS and result.faq is None:
                    result = replace(result, faq=self.faq_for_intent(intent, script))
                return result
            return replace(base, confidence=round(score, 3))
        return base
