"""The safety detector: does she describe something happening now that needs a person?

Runs on every inbound message, whatever the conversation is doing (also while a human has
the chat, and on voice-note transcripts), independently of the intent. Recall first: a false
alarm costs a secretary a minute; a miss can cost a life.

Three kinds of evidence, sentence by sentence (:mod:`clinicflow.understanding.context`):

1. alarm signs in her own words (:mod:`clinicflow.understanding.signs`) and the catalog's
   red-flag phrases, dropped when a negation governs them ("não estou sangrando");
2. the trained model's probability that the message is urgent, computed on the sentences
   that speak of now (a past, hypothetical or someone-else's sentence is left out);
3. the context: past and over, another person not present, a general question, a message
   saying it has passed.

The verdict: a strong sign in a sentence about now, or a high probability, is urgent; a
weaker sign with some probability is urgent too, marked ``sure=False`` (the bot never goes on
with the script over a symptom it is unsure of). Anything else alarming is reported as
``symptom`` so Gemini, when configured, takes a second look; Gemini may raise urgency, never
lower it. Each category carries its own guidance (SAMU 192, CVV 188 only for self-harm, 190 and
180 for violence), chosen by :func:`guidance_key`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from clinicflow.model import Catalog, RedFlag
from clinicflow.text import PhraseMatcher, normalize, words
from clinicflow.understanding.context import (
    FIGURATIVE_RE,
    Sentence,
    negation_scopes,
    sentences,
)
from clinicflow.understanding.corpus import CATEGORIES
from clinicflow.understanding.signs import SIGNS

# Chosen on tests/data/understanding_tune.yaml (bench/understanding.py --sweep): every
# emergency there is caught for P_SURE ≤ 0.55 and any P_WITH_SIGN in 0.05–0.3, with no
# look-alike flagged; recall falls from 0.65 up.
P_SURE = 0.50  # the model alone: urgent (recall flat up to 0.55; the lower end, for margin)
P_WITH_SIGN = 0.12  # a weak sign about now plus this much: urgent, not sure
P_SYMPTOM = 0.25  # below urgency, but worth Gemini's second look

_NEGATION_WORDS = ("nao", "nunca", "nem", "sem", "jamais", "nada")
# Signs whose words are a negation themselves ("não para de sangrar", "não consigo respirar").
_SELF_NEGATING = re.compile(
    r"\bnao (?:para|parou|passa|passou|consigo|consegue|sinto|sente|mexe|melhora|aguento|acordar)\b"
)
# A negation up to three words before a sign denies it, unless the scope ends first ("nada
# e vomito tudo", as in :func:`~clinicflow.understanding.context.negation_scopes`); "do nada"
# (out of nowhere), "de nada" and "não aguento (mais)" deny nothing.
_NEGATED_BEFORE = re.compile(
    rf"(?<!\bdo )(?<!\bde )\b(?:{'|'.join(_NEGATION_WORDS)})\b(?!\s+(?:aguento|suporto)\b)"
    r"(?:\s+(?!(?:e|mas|porem|so|apenas|que|porque)\b)\w+){0,3}\s*$"
)

# A call for help and nothing else ("socorro", "é urgente", "ajuda urgente por favor"): a
# person at once, whatever it is about (a question *about* urgency has more words).
_HELP_WORDS = (
    r"(?:e|eh|uma|um|caso de|por favor|pfv|pf|preciso de|preciso|alguem|me ajuda|me ajudem|"
    r"ajuda|ajudem|socorro|urgente|urgencia|emergencia|muito|agora|rapido|pelo amor de deus)"
)
_CALL_FOR_HELP = re.compile(rf"^(?:{_HELP_WORDS}\s*)+$")
_HELP_CORE = re.compile(r"\b(?:socorro|urgente|urgencia|emergencia)\b")
CALL_FOR_HELP = "pedido_de_socorro"  # the sign id of a bare call for help (no category)
# Categories whose signs speak of what someone else does to her ("meu marido me bate",
# "tenho medo do meu ex"): another person or a fear in the sentence does not discount them
# when the sentence speaks of her (``_HER``); "minha amiga foi estuprada há 2 anos" does not.
_ABOUT_HER = frozenset({"violence"})
_HER = re.compile(r"\b(?:me|mim|eu|comigo|fui|estou|sou|meu quarto|minha casa)\b")
# Signs someone with her tells of another person, now: a farewell message ("minha filha
# mandou uma mensagem de despedida e se trancou no quarto").
_ABOUT_ANYONE = frozenset({"despedida"})
_STILL_COUNTS = frozenset({"other_person", "hypothetical"})
CATEGORY_SURE = 0.5  # the model's category guess gets its own guidance from here on

#: Categories whose guidance is not the generic emergency one (clinic texts
#: ``urgent_<category>`` / ``emergency_<category>`` override ``urgent`` / ``emergency``).
OWN_GUIDANCE = ("self_harm", "violence")


@dataclass(frozen=True)
class SafetyVerdict:
    """What the safety detector concluded about one message.

    ``urgent`` hands off at once; ``sure`` is False when it does so on doubt (a symptom about
    now, not certain). ``category`` is one of
    :data:`~clinicflow.understanding.corpus.CATEGORIES` or None; ``signs`` are the alarm
    signs and red-flag ids found in sentences about now; ``symptom`` says something alarming
    was mentioned at all (past, someone else's, or too weak); ``discounted`` gives why
    alarming sentences did not count (``past``, ``other_person``, ``hypothetical``,
    ``resolved``). ``likely_category`` is the best category anyone can give for an urgent
    verdict (``category``, else the model's guess even below its threshold), for the brief.
    """

    urgent: bool = False
    category: str | None = None
    probability: float = 0.0
    sure: bool = True
    signs: tuple[str, ...] = ()
    symptom: bool = False
    discounted: tuple[str, ...] = ()
    likely_category: str | None = None

    @property
    def red_flags(self) -> tuple[str, ...]:
        """What the brief shows for an urgent verdict, never empty: the signs, else the
        (likely) category, else ``urgent``."""
        if not self.urgent:
            return ()
        return self.signs or (self.category or self.likely_category or "urgent",)


NOT_URGENT = SafetyVerdict()

# The model's probability of ``urgent`` for a text (the text's embedding is computed inside).
Probability = Callable[[str], float]
Category = Callable[[str], "tuple[str | None, float]"]


@dataclass(frozen=True)
class _Found:
    sign: str
    category: str
    strong: bool


class SafetyDetector:
    """The detector over one catalog (its red-flag phrases join the built-in signs).

    ``p_sure`` and ``p_with_sign`` are the model probabilities above which the message alone,
    or a weak sign with it, is urgent (defaults: :data:`P_SURE`, :data:`P_WITH_SIGN`; a
    benchmark sweeps them). Thread-safe (read-only after construction).
    """

    def __init__(
        self, catalog: Catalog, *, p_sure: float = P_SURE, p_with_sign: float = P_WITH_SIGN
    ) -> None:
        self.p_sure = p_sure
        self.p_with_sign = p_with_sign
        self._flags: dict[str, PhraseMatcher] = {"clinic": self._matcher(catalog.clinic.red_flags)}
        for script in catalog.scripts:
            self._flags[script.id] = self._matcher(script.red_flags)
        self._flag_category = {
            flag.id: flag.category or ""
            for flags in (catalog.clinic.red_flags, *(s.red_flags for s in catalog.scripts))
            for flag in flags
        }

    @staticmethod
    def _matcher(flags: tuple[RedFlag, ...]) -> PhraseMatcher:
        return PhraseMatcher((flag.id, phrase) for flag in flags for phrase in flag.phrases)

    def signs_in(self, sentence: Sentence) -> list[_Found]:
        """Alarm signs and red-flag phrases in one sentence, without negated ones."""
        found: list[_Found] = []
        if _CALL_FOR_HELP.match(sentence.norm) and _HELP_CORE.search(sentence.norm):
            found.append(_Found(CALL_FOR_HELP, "", True))
        for sign in SIGNS:
            for match in sign.pattern.finditer(sentence.norm):
                if not _negated(sentence.norm, match):
                    found.append(_Found(sign.id, sign.category, sign.strength == "strong"))
                    break
        # The catalog's phrases too, unless a negation governs them ("não tô com febre").
        negated = negation_scopes(words(sentence.norm))
        for matcher in self._flags.values():
            flags = [flag for flag, _, at in matcher.find_at(sentence.norm) if not negated[at]]
            for flag in dict.fromkeys(flags):
                found.append(_Found(flag, self._flag_category.get(flag, ""), True))
        return found

    def assess(
        self,
        text: str,
        *,
        probability: float,
        probability_of: Probability | None = None,
        category_of: Category | None = None,
    ) -> SafetyVerdict:
        """The verdict on ``text``.

        Args:
            probability: the model's p(urgent) for the whole message (0 without a model).
            probability_of: p(urgent) of another text (the sentences about now), when some
                sentences are discounted; None keeps ``probability``.
            category_of: the model's emergency category of a text, when no sign names one.
        """
        parts = sentences(text)
        if not parts:
            return NOT_URGENT
        now: list[Sentence] = []
        reasons: list[str] = []
        found_now: list[_Found] = []
        found_any: list[_Found] = []
        for part in parts:
            in_part = self.signs_in(part)
            found_any += in_part
            if part.discounted:
                if in_part:
                    reasons += list(part.reasons)
                if set(part.reasons) <= _STILL_COUNTS:
                    # "meu marido me bate": someone else, but done to her, now.
                    her = bool(_HER.search(part.norm))
                    found_now += [
                        f
                        for f in in_part
                        if f.strong
                        and ((f.category in _ABOUT_HER and her) or f.sign in _ABOUT_ANYONE)
                    ]
                continue
            now.append(part)
            found_now += in_part
        figurative = any(FIGURATIVE_RE.search(normalize(part.text)) for part in now)
        if not now:
            p_now = 0.0
        elif (len(now) == len(parts) and not figurative) or probability_of is None:
            p_now = probability
        else:
            # Leaving a discounted sentence or a figure of speech ("sangrando de raiva") out
            # may only lower the probability: read alone, a short clause ("sinto um
            # enjoozinho leve") looks more alarming than in context.
            kept = " ".join(part.norm if figurative else part.text for part in now)
            p_now = min(probability, probability_of(kept))
        strong = [f for f in found_now if f.strong]
        weak = [f for f in found_now if not f.strong]
        urgent, sure = False, True
        if strong or p_now >= self.p_sure:
            urgent = True
        elif weak and p_now >= self.p_with_sign:
            urgent, sure = True, False
        signs = tuple(dict.fromkeys(f.sign for f in found_now))
        if not urgent:
            return SafetyVerdict(
                probability=round(p_now, 3),
                signs=signs,
                symptom=bool(found_any) or probability >= P_SYMPTOM,
                discounted=tuple(dict.fromkeys(reasons)),
            )
        category = next((f.category for f in [*strong, *weak] if f.category), None)
        likely = category
        if category is None and category_of is not None:
            about = " ".join(part.text for part in now) or text
            likely, p_category = category_of(about)
            category = likely if p_category >= CATEGORY_SURE else None
        return SafetyVerdict(
            urgent=True,
            category=category if category in CATEGORIES else None,
            likely_category=likely if likely in CATEGORIES else None,
            probability=round(p_now, 3),
            sure=sure,
            signs=signs,
            symptom=True,
            discounted=tuple(dict.fromkeys(reasons)),
        )


def _negated(norm: str, match: re.Match[str]) -> bool:
    """Whether a negation cue governs a sign ("não estou sangrando"); a sign that is itself a
    negation ("não consigo respirar", "não para de sangrar") is never negated."""
    words = match.group().split()
    if words[0] in _NEGATION_WORDS:
        return False
    if _NEGATED_BEFORE.search(norm[: match.start()]):
        return True
    # A sign of several parts negated inside ("a cirurgia foi ótima, nada inchado nem
    # vermelho", "tirei o diu e não tenho febre"): its last part is what is denied.
    return any(word in _NEGATION_WORDS for word in words[1:-1]) and not _SELF_NEGATING.search(
        match.group()
    )


def guidance_key(category: str | None, base: str) -> str:
    """The clinic text for a category's guidance: ``urgent_self_harm`` for self-harm, say,
    else ``base`` (``urgent`` or ``emergency``)."""
    return f"{base}_{category}" if category in OWN_GUIDANCE else base
