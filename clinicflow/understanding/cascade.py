"""Understanding one patient message: safety first, then the intent, cheapest step first.

    safety   the detector (:mod:`~clinicflow.understanding.safety`) on every message
    rule     exact commands: a compliance word alone (PARE, SAIR, STOP…) is always opt-out;
             the catalog's ``exact`` phrases (e.g. "atendente") decide their intent
    choice   a bare number answers a menu or a choice slot; a bare yes/no a yes/no question
    model    the trained classifier (:mod:`~clinicflow.understanding.classifier`): calibrated
             probabilities; below ``intent_accept`` nothing is understood, below
             ``intent_sure`` the guess never hands off or jumps, and Gemini (when configured)
             is asked; an action request under a negation ("não quero marcar agora") is a
             refusal, not the request
    llm      Gemini, when configured (see :mod:`clinicflow.gemini`)
    fallback not understood

Besides the intent, the cascade finds what the dialogue needs: the closest FAQ, procedures the
message names, and the nearest procedure by similarity (routing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from clinicflow.model import FAQ, Catalog, Script
from clinicflow.text import PhraseMatcher, has_letters_or_digits, normalize, words
from clinicflow.understanding.answers import numbered_choice, yes_no
from clinicflow.understanding.context import NEGATIONS, without_negated
from clinicflow.understanding.corpus import INFORM
from clinicflow.understanding.safety import NOT_URGENT, SafetyDetector, SafetyVerdict

if TYPE_CHECKING:
    import numpy as np

    from clinicflow.index import Index
    from clinicflow.understanding.classifier import IntentModel

Source = Literal["choice", "rule", "model", "llm", "fallback"]

QUESTION_INTENTS = frozenset(
    {"ask_price", "ask_info", "ask_location", "ask_hours", "ask_insurance"}
)
# Requests that a negation turns into a refusal ("não quero marcar agora").
_NEGATABLE = frozenset({"schedule", "human", "reschedule_cancel"})
#: Words that, alone, always mean "stop messaging me" (WhatsApp Business compliance).
COMPLIANCE_WORDS = frozenset(
    {"pare", "parar", "para", "sair", "stop", "cancelar", "descadastrar", "remover", "chega"}
)
_SHORT = 3  # words: a bare choice, yes/no or command this short skips the model
# A question about a dose or which medicine to take: always the clinic's fixed medical_advice
# text (never a FAQ that happens to be near, never a guess).
_MEDICINE = (
    r"(?:remedio|remedios|medicamento|medicacao|antibiotico|pomada|hormonio|pilula|comprimido)"
)
_DOSING = re.compile(
    r"\b(?:qual|que|quanto|quantos|quantas)\b(?: \w+){0,3} (?:dose|dosagem|mg|miligramas?|"
    r"comprimidos?|gotas|capsulas?)\b|\b(?:dose|dosagem)\b.{0,50}\b(?:tomar|tomo|usar|uso|"
    rf"aplicar|aplico)\b|\b(?:qual|que) {_MEDICINE}\b.{{0,40}}\b(?:tomar|tomo|usar|uso|passar|"
    r"passo|aplicar)\b|\b(?:posso|devo) (?:tomar|usar|passar) (?:\w+ )?(?:\d+ ?mg|"
    rf"{_MEDICINE})\b"
)


@dataclass(frozen=True)
class Understanding:
    """What the cascade made of one message.

    ``confidence`` is a probability for ``source="model"`` (calibrated on the tuning set),
    1.0 for exact rules and choices, Gemini's own figure for ``llm``. ``ranked`` holds the
    model's best intents with their probabilities; ``safety`` is the safety verdict, and
    ``red_flags`` the signs behind an urgent one (for events and the brief).
    """

    intent: str | None
    confidence: float
    source: Source
    red_flags: tuple[str, ...] = ()
    choice: int | None = None  # a bare number the patient sent (1-based)
    faq: FAQ | None = None
    faq_score: float = 0.0
    scripts: tuple[str, ...] = ()  # scripts whose entry keywords the message names
    similar_script: str | None = None  # nearest trigger example's script (routing only)
    script_score: float = 0.0
    ranked: tuple[tuple[str, float], ...] = ()
    sure: bool = True  # False: a model guess below ``intent_sure``
    llm_slots: tuple[tuple[str, Any], ...] = ()  # slot values Gemini read (validated)
    urgent_symptoms: tuple[str, ...] = ()  # symptoms Gemini judged urgent, for the brief
    safety: SafetyVerdict = NOT_URGENT

    @property
    def confident(self) -> bool:
        """Whether the local reading is good enough to act on without asking Gemini."""
        return self.source in ("choice", "rule", "llm") or (
            self.source == "model" and self.intent is not None and self.sure
        )

    @property
    def second_look(self) -> bool:
        """Something alarming was said that the local path did not call urgent: Gemini, when
        configured, looks again even if the intent was sure."""
        return self.safety.symptom and not self.safety.urgent

    @property
    def urgent(self) -> bool:
        return self.safety.urgent or self.intent == "urgent"


class Understander:
    """The cascade over one catalog. Built once per catalog; thread-safe (read-only).

    Args:
        catalog: the loaded catalog.
        index: the embedding index of its examples, FAQ and triggers (None: no embeddings,
            so no model, FAQ similarity or routing by similarity — rules and choices only).
        model: the trained intent model (None: no intent beyond rules and choices).
    """

    def __init__(
        self, catalog: Catalog, index: Index | None, model: IntentModel | None = None
    ) -> None:
        self.catalog = catalog
        self.index = index
        self.model = model if index is not None else None
        self.thresholds = catalog.clinic.understanding
        self.safety = SafetyDetector(catalog)
        exact: dict[str, str] = {word: "opt_out" for word in COMPLIANCE_WORDS}
        for intent in catalog.clinic.intents:
            exact.update({normalize(phrase): intent.name for phrase in intent.exact})
        self._exact = exact
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

    def exact(self, text: str) -> str | None:
        """The intent of a message that is exactly a command or compliance word, else None."""
        return self._exact.get(normalize(text))

    def script_mentions(self, text: str) -> tuple[str, ...]:
        return tuple(self._triggers.keys(text))

    def vector(self, text: str) -> np.ndarray | None:
        if self.index is None or not has_letters_or_digits(text):
            return None
        return self.index.embed(text[:1000])

    def probabilities(self, text: str, vector: np.ndarray | None = None) -> dict[str, float]:
        """The model's ``{intent: probability}`` ({} without a model or for an empty text)."""
        if self.model is None or not has_letters_or_digits(text):
            return {}
        vector = vector if vector is not None else self.vector(text)
        return {} if vector is None else self.model.probabilities(text, vector)

    def assess(self, text: str) -> SafetyVerdict:
        """The safety verdict alone (while a human has the chat, for instance)."""
        return self._assess(text, self.probabilities(text))

    def _assess(self, text: str, probs: dict[str, float]) -> SafetyVerdict:
        model = self.model

        def probability_of(part: str) -> float:
            return self.probabilities(part).get("urgent", 0.0)

        def category_of(part: str) -> tuple[str | None, float]:
            vector = self.vector(part)
            if model is None or vector is None:
                return None, 0.0
            # The detector keeps a weak guess for the brief only (generic guidance).
            return model.category(part, vector)

        return self.safety.assess(
            text,
            probability=probs.get("urgent", 0.0),
            probability_of=probability_of if model is not None else None,
            category_of=category_of if model is not None else None,
        )

    def nearest_faq(self, vector: np.ndarray, script: Script | None) -> tuple[FAQ | None, float]:
        assert self.index is not None
        scopes = ["clinic"] + ([script.id] if script else [])
        hits = self.index.search(vector, kinds=("faq",), scopes=scopes, k=1)
        if not hits:
            return None, 0.0
        best = hits[0]
        return self._faqs.get((best.entry.scope, best.entry.key)), best.score

    def faq_for_intent(self, intent: str, script: Script | None) -> FAQ | None:
        """The FAQ a question intent points to (the script's own first).

        Only for the intents one answer covers (price, location, hours, insurance):
        ``ask_info`` spans every FAQ, so only a close match by similarity may answer it.
        """
        if intent == "ask_info":
            return None
        pools = ([*script.faq] if script else []) + list(self.catalog.clinic.faq)
        return next((faq for faq in pools if faq.intent == intent), None)

    def nearest_script(self, vector: np.ndarray) -> tuple[str | None, float]:
        assert self.index is not None
        hits = self.index.search(vector, kinds=("trigger",), k=1)
        if not hits:
            return None, 0.0
        return hits[0].entry.key, hits[0].score

    def intent_of(self, text: str) -> tuple[str | None, float]:
        """The model's reading of ``text`` alone (exact commands first), for guards."""
        exact = self.exact(text)
        if exact is not None:
            return exact, 1.0
        probs = self.probabilities(text)
        if not probs:
            return None, 0.0
        best = max(probs, key=probs.__getitem__)
        return best, probs[best]

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
        mentions = self.script_mentions(text)
        if not has_letters_or_digits(text):
            return Understanding(None, 0.0, "fallback")
        tokens = words(text)
        exact = self.exact(text)
        number = numbered_choice(text)
        answer = yes_no(text)
        if len(tokens) <= _SHORT and (exact or number is not None or answer is not None):
            # A bare command, number or yes/no: nothing in it can describe a symptom.
            if exact is not None:
                return Understanding(exact, 1.0, "rule", scripts=mentions)
            if number is not None and expects_choice:
                return Understanding(None, 1.0, "choice", choice=number)
            if answer is not None:
                said = "affirm" if answer else "deny"
                return Understanding(said, 1.0, "choice", scripts=mentions)
        vector = self.vector(text)
        probs = self.probabilities(text, vector)
        safety = self._assess(text, probs)
        base = Understanding(None, 0.0, "fallback", choice=number, scripts=mentions, safety=safety)
        if vector is not None:
            base = self._retrieve(base, vector, script, mentions)
        if safety.urgent:
            # Its confidence: the model's probability, at least 0.9 for a strong sign and 0.5
            # for a weak one (handed off on doubt); a verdict with signs counts as a rule.
            floor = (0.9 if safety.sure else 0.5) if safety.signs else 0.0
            return replace(
                base,
                intent="urgent",
                confidence=round(max(safety.probability, floor), 3),
                source="rule" if safety.signs else "model",
                red_flags=safety.red_flags,
                ranked=_ranked(probs),
            )
        if number is not None and expects_choice:
            return replace(base, confidence=1.0, source="choice")
        if answer is not None and expects_yes_no:
            return replace(
                base, intent="affirm" if answer else "deny", confidence=1.0, source="choice"
            )
        if exact is not None:
            return replace(base, intent=exact, confidence=1.0, source="rule")
        if _DOSING.search(normalize(text)):
            return replace(
                base, intent="medical_advice", confidence=1.0, source="rule", ranked=_ranked(probs)
            )
        if not probs:
            return base
        intent, confidence = self._intent(text, probs)
        thresholds = self.thresholds
        if intent is None or confidence < thresholds.intent_accept:
            # A statement (a name, an age, her situation) or nothing clear: no intent; the
            # dialogue reads it as an answer to the step, or says it did not understand.
            statement = intent is None and confidence >= thresholds.intent_accept
            return replace(
                base,
                confidence=round(confidence, 3),
                source="model" if statement else "fallback",
                ranked=_ranked(probs),
            )
        result = replace(
            base,
            intent=intent,
            confidence=round(confidence, 3),
            source="model",
            sure=confidence >= thresholds.intent_sure,
            ranked=_ranked(probs),
        )
        if intent in QUESTION_INTENTS and result.faq is None and result.sure:
            result = replace(result, faq=self.faq_for_intent(intent, script))
        return result

    def _retrieve(
        self,
        base: Understanding,
        vector: np.ndarray,
        script: Script | None,
        mentions: tuple[str, ...],
    ) -> Understanding:
        """The closest FAQ and, when no procedure is named, the closest procedure."""
        faq, faq_score = self.nearest_faq(vector, script)
        if faq is not None and faq_score >= self.thresholds.faq_accept:
            base = replace(base, faq=faq, faq_score=faq_score)
        if not mentions:
            found, score = self.nearest_script(vector)
            if found and score >= self.thresholds.route_accept:
                base = replace(base, similar_script=found, script_score=score)
        return base

    def _intent(self, text: str, probs: dict[str, float]) -> tuple[str | None, float]:
        """The best intent other than ``urgent`` (the safety detector owns urgency) and its
        probability among the others; a negated request becomes ``deny``; a statement
        (:data:`~clinicflow.understanding.corpus.INFORM`) is no intent at all."""
        rest = {k: v for k, v in probs.items() if k != "urgent"}
        total = sum(rest.values()) or 1.0
        intent: str = max(rest, key=rest.__getitem__)
        confidence = rest[intent] / total
        if intent in _NEGATABLE and NEGATIONS & set(words(text)):
            kept = without_negated(normalize(text))
            again = self.probabilities(kept) if kept else {}
            if again.get(intent, 0.0) < rest[intent] / 2:
                return "deny", max(confidence, 0.6)
        return (None if intent == INFORM else intent), confidence


def _ranked(probs: dict[str, float], n: int = 3) -> tuple[tuple[str, float], ...]:
    best = sorted(probs.items(), key=lambda item: -item[1])[:n]
    return tuple((intent, round(p, 3)) for intent, p in best)
