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
from typing import TYPE_CHECKING, Any, Literal

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
    "complaint",
    "human",
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
_CLAUSE_RE = re.compile(r"[.;!?\n]+|,|\bmas\b|\bporem\b", re.IGNORECASE)
# Context that turns a symptom into a look-alike (matched on normalised text).
_PAST = (
    r"mes passado|semana passada|ano passado|anos atras|meses atras|tempos atras|faz anos|"
    r"faz tempo|antigamente|quando eu era|na gravidez passada|no parto|outra vez que"
)
_OTHERS = (
    r"minha (?:mae|filha|irma|avo|sogra|prima|tia|amiga|vizinha|colega|cunhada|sobrinha)|"
    r"meu (?:pai|filho|irmao|marido|namorado|avo|tio|primo|amigo|vizinho|sobrinho|cachorro)"
)
_HYPOTHETICAL = r"\bpode ter\b|\bpode dar\b|\bcostuma ter\b|\be comum\b|\bse eu tiver\b"
_DISCOUNT = re.compile(rf"\b(?:{_OTHERS})\b|{_HYPOTHETICAL}")
_PAST_RE = re.compile(rf"\b(?:{_PAST})\b")
# A clause that speaks of now keeps its symptom even if it also names a past event
# ("coloquei o DIU semana passada e estou com febre").
_NOW_RE = re.compile(
    r"\b(?:estou|esta|agora|hoje|desde|comecei|comecou|continua|ainda|aumenta|aumentando|"
    r"piora|piorando|sem parar)\b"
)
_GONE = re.compile(r"\bja (?:passou|melhorou|estou bem|to bem)\b|\bhoje (?:estou|to) bem\b")
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
    similar_script: str | None = None  # nearest trigger example's script (routing only)
    script_score: float = 0.0
    rule_intents: tuple[str, ...] = field(default=())
    sure: bool = True  # False: an embedding match below ``embedding_sure``
    llm_slots: tuple[tuple[str, Any], ...] = ()  # slot values Gemini read (validated)
    urgent_symptoms: tuple[str, ...] = ()  # symptoms Gemini judged urgent, for the brief

    @property
    def confident(self) -> bool:
        """Whether the local reading is good enough to act on without asking Gemini."""
        return self.source in ("choice", "rule", "llm") or (
            self.source == "embedding" and self.intent is not None and self.sure
        )


def _past_only(norm: str) -> bool:
    return bool(_PAST_RE.search(norm)) and not _NOW_RE.search(norm)


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
        self._labelled: tuple[list[int], list[str]] | None = None
        self._faqs: dict[tuple[str, str], FAQ] = {}
        for faq in catalog.clinic.faq:
            self._faqs[("clinic", faq.id)] = faq
        for script in catalog.scripts:
            for faq in script.faq:
                self._faqs[(script.id, faq.id)] = faq

    # -- the pieces -------------------------------------------------------------------------

    def red_flags(self, text: str, script: Script | None = None) -> tuple[str, ...]:
        """Red flags in ``text``: the clinic's and every procedure's, clause by clause.

        Every procedure's flags count whatever script the patient is on (she may be asking
        about the IUD and mention her surgery wound). A clause about the past ("mês
        passado", "anos atrás"), about someone else ("minha mãe") or a hypothetical ("pode
        ter sangramento?") does not raise a flag; nor does a message saying it has passed.
        """
        if _GONE.search(normalize(text)):
            return ()
        found: list[str] = []
        for clause in _CLAUSE_RE.split(text):
            norm = normalize(clause)
            if not norm or _DISCOUNT.search(norm) or _past_only(norm):
                continue
            for matcher in (self._clinic_flags, *self._script_flags.values()):
                found += [flag for flag in matcher.keys(clause) if flag not in found]
        return tuple(found)

    def discounted(self, text: str) -> bool:
        """Whether symptoms in ``text`` are past, someone else's, or hypothetical."""
        norm = normalize(text)
        return bool(_GONE.search(norm) or _DISCOUNT.search(norm) or _past_only(norm))

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
        """The intent of the nearest labelled example (intent examples and FAQ questions).

        1-nearest-neighbour: on the held-out set it beat k=3 and k=5 votes (bench/).
        """
        assert self.index is not None
        if self._labelled is None:
            self._labelled = self._labelled_rows()
        rows, labels = self._labelled
        if not labels:
            return None, 0.0
        scores = self.index.vectors[rows] @ vector
        best = int(scores.argmax())
        score = float(scores[best])
        return (labels[best] if score >= self.thresholds.embedding_accept else None), score

    def _labelled_rows(self) -> tuple[list[int], list[str]]:
        """Index rows that carry an intent: intent examples, and FAQ questions with one."""
        assert self.index is not None
        rows: list[int] = []
        labels: list[str] = []
        for row, entry in enumerate(self.index.entries):
            label = entry.key if entry.kind == "intent" else None
            if entry.kind == "faq":
                faq = self._faqs.get((entry.scope, entry.key))
                label = faq.intent if faq else None
            if label:
                rows.append(row)
                labels.append(label)
        return rows, labels

    def nearest_faq(self, vector: np.ndarray, script: Script | None) -> tuple[FAQ | None, float]:
        assert self.index is not None
        scopes = ["clinic"] + ([script.id] if script else [])
        hits = self.index.search(vector, kinds=("faq",), scopes=scopes, k=3)
        if not hits:
            return None, 0.0
        best = hits[0]
        faq = self._faqs.get((best.entry.scope, best.entry.key))
        return faq, best.score

    def _without_social(self, text: str) -> str:
        """The message's words without the greetings/thanks/yes/no phrases the rules found."""
        tokens = words(text)
        for intent, phrase in self._rules.find(text):
            if intent in _SOCIAL:
                drop = words(phrase)
                for i in range(len(tokens) - len(drop) + 1):
                    if tokens[i : i + len(drop)] == drop:
                        del tokens[i : i + len(drop)]
                        break
        return " ".join(tokens)

    def _faq_near(self, text: str, script: Script | None) -> FAQ | None:
        faq, score = self.nearest_faq(self.index.embed(text), script) if self.index else (None, 0.0)
        return faq if score >= self.thresholds.faq_accept else None

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
        discounted = self.discounted(text)
        if discounted and "urgent" in rules:
            rules.remove("urgent")
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
                    base = replace(base, similar_script=found, script_score=score)
        substantive = [intent for intent in rules if intent not in _SOCIAL]
        if not substantive:
            # "não, mas obrigada" / "sim, pode ser": the leading word decides.
            first = words(text)[:1]
            if first == ["nao"]:
                rules = ["deny"]
            elif first == ["sim"]:
                rules = ["affirm"]
        if not substantive and rules and self.index is not None:
            # "Oi! Queria entender como é o tratamento": the greeting must not hide the rest.
            rest = self._without_social(text)
            if len(rest.split()) >= 3:
                nearest, score = self.nearest_intent(self.index.embed(rest))
                if nearest is not None and nearest not in _SOCIAL and nearest != "urgent":
                    substantive = [nearest]
                    base = replace(base, faq=base.faq or self._faq_near(rest, script))
        if substantive or rules:
            chosen = (substantive or rules)[0]
            confidence = 0.95 if len(substantive) <= 1 else 0.85
            result = replace(base, intent=chosen, confidence=confidence, source="rule")
            if chosen in QUESTION_INTENTS and result.faq is None:
                result = replace(result, faq=self.faq_for_intent(chosen, script))
            return result
        if vector is not None:
            nearest, score = self.nearest_intent(vector)
            if nearest == "urgent" and discounted:
                nearest = "ask_info" if "?" in text else None
            if nearest is not None:
                intent = nearest
                result = replace(
                    base,
                    intent=intent,
                    confidence=round(score, 3),
                    source="embedding",
                    sure=score >= self.thresholds.embedding_sure,
                )
                # No canonical FAQ from a similarity guess: "queria saber sobre menopausa"
                # sits near "queria saber o valor" but is not a price question. Only a close
                # FAQ question (found above) answers it.
                return result
            return replace(base, confidence=round(score, 3))
        return base
