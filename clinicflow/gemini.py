"""Gemini in the loop: understanding, grounded answers and hand-off summaries.

The engine calls three functions, each at most once per need and each returning the call it
made (an :class:`~clinicflow.llm.LLMCall`, for the LLM calls table) beside its result:

- :func:`understand_with_llm`, when the local cascade is not confident: one call with a JSON
  response schema whose every field is a closed vocabulary (intents, the current script's
  slots, flags). Anything that does not validate leaves the local result standing.
- :func:`answer_with_llm`, for a question the FAQ does not cover where the script allows it:
  grounded on the clinic's facts and FAQ only, then post-checked (:mod:`clinicflow.answer_check`).
- :func:`summarize_with_llm`, for the secretary's brief; checked too, None on any doubt.

The patient's words are data, never instructions: they travel only in a delimited JSON block
of the user prompt, the system prompt says so, and what comes back is only ever picked from
a closed vocabulary or checked before anyone reads it. Patient text is never logged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING, Any

from clinicflow import slots as slot_values
from clinicflow.answer_check import check_answer, check_summary, is_medical
from clinicflow.dialogue import ROUTING
from clinicflow.llm_prompts import (
    ANSWER_SCHEMA,
    SUMMARY_SCHEMA,
    answer_system,
    clean,
    clinic_facts,
    data_block,
    history_data,
    summary_system,
    understand_system,
    understanding_schema,
)
from clinicflow.model import EMERGENCY_CATEGORIES, INTENTS, Catalog, Script, Slot, State
from clinicflow.templates import render
from clinicflow.text import PhraseMatcher, fold, has_letters_or_digits, words
from clinicflow.understanding import (
    NOT_URGENT,
    QUESTION_INTENTS,
    SafetyVerdict,
    Understanding,
    numbered_choice,
    yes_no,
)

if TYPE_CHECKING:
    from clinicflow.llm import LLM, LLMCall

logger = logging.getLogger(__name__)

MIN_CONFIDENCE = 0.5  # below this the LLM's intent is dropped (its flags still count)
FLAG_INTENTS = (  # a flag set by the LLM decides the intent, in this order
    ("urgent", "urgent"),
    ("medical_advice", "medical_advice"),
    ("wants_human", "human"),
    ("complaint", "complaint"),
)
LLM_UNKNOWN_TEXT = (
    "Essa informação eu não tenho aqui, mas a nossa secretária confirma para você 💜 "
    "Se quiser, escreva *atendente* que eu chamo ela agora."
)
"""Said when the facts do not answer a question; ``texts.llm_unknown`` in clinic.yaml wins."""


@dataclass(frozen=True)
class LLMUnderstanding(Understanding):
    """An :class:`Understanding` from Gemini, with the slot values it found (validated)."""

    procedure: str | None = None

    @property
    def slot_values(self) -> dict[str, slot_values.SlotValue]:
        return dict(self.llm_slots)


# -- shared pieces -----------------------------------------------------------------------------


def _text(catalog: Catalog, key: str, fallback: str) -> str:
    try:
        return catalog.clinic.text(key)
    except KeyError:
        return fallback


def _safe_text(catalog: Catalog, key: str) -> str:
    return render(_text(catalog, key, LLM_UNKNOWN_TEXT), {}, clinic_facts(catalog)).strip()


# -- understanding -----------------------------------------------------------------------------


def _step(script: Script | None, conv: Mapping[str, Any]) -> State | None:
    name = conv.get("state")
    if script is None or not name or name == ROUTING or not script.has_state(name):
        return None
    return script.state(name)


def worth_asking(
    catalog: Catalog,
    script: Script | None,
    conv: Mapping[str, Any],
    text: str,
    local: Understanding,
    today: date,
) -> bool:
    """Whether the LLM can add anything the local path will not already handle this turn.

    Always when the safety detector saw a symptom it did not call urgent (a second look).
    Never for an empty or emoji-only message, a local urgent verdict (final), a numbered
    choice, a yes/no, a rule hit, a FAQ the dialogue will answer, a procedure the message
    names, an awaited slot the local parsers read, or a menu option named by its words. A
    confident model reading is not sent either, unless the step awaits a slot the message did
    not give locally (the engine decides whether to ask in that case; today it asks only when
    not confident).
    """
    if not has_letters_or_digits(text) or local.urgent:
        return False  # an urgent verdict is final: Gemini may raise urgency, never lower it
    if local.second_look:
        return True  # a symptom the local path did not call urgent: always a second look
    if local.source in ("choice", "rule"):
        return False
    if numbered_choice(text) is not None or yes_no(text) is not None:
        return False
    if local.faq is not None or local.scripts:
        return False
    step = _step(script, conv)
    if script is None or step is None:
        titles = PhraseMatcher((s.id, s.title) for s in catalog.scripts)
        return not local.confident and len(titles.keys(text)) != 1
    slot = script.slot(step.collect) if step.collect else None
    if slot is not None:
        filled = conv.get("slots") or {}
        open_slots = [s for s in script.slots if s is slot or filled.get(s.name) is None]
        return slot.name not in slot_values.extract(open_slots, text, today, slot.name)
    if local.confident:
        return False
    if step.menu is not None:
        matcher = PhraseMatcher(
            (str(n), phrase)
            for n, item in enumerate(step.menu.items, start=1)
            for phrase in (item.label, *item.synonyms)
        )
        return len(matcher.keys(text)) != 1
    return True


def _grounded(slot: Slot, value: slot_values.SlotValue, text: str) -> bool:
    """A name, phone or e-mail the LLM reports must be written in the message."""
    if slot.type == "name":
        said = set(words(text))
        return all(word in said for word in words(str(value)))
    if slot.type == "phone":
        digits = "".join(ch for ch in text if ch.isdigit())
        return str(value)[2:] in digits
    if slot.type == "email":
        return str(value) in fold(text)
    return True


def parse_understanding(
    data: Any, catalog: Catalog, script: Script | None, text: str
) -> LLMUnderstanding | None:
    """Validate a reply against the schema and the script; None when it is not usable."""
    if not isinstance(data, dict):
        return None
    intent, confidence = data.get("intent"), data.get("confidence")
    if intent not in INTENTS or isinstance(confidence, bool):
        return None
    if not isinstance(confidence, int | float) or not 0.0 <= confidence <= 1.0:
        return None
    flags = {key: data.get(key) for key, _ in FLAG_INTENTS}
    if not all(isinstance(value, bool) for value in flags.values()):
        return None
    raw_slots = data.get("slots") or {}
    if not isinstance(raw_slots, dict):
        return None
    found: list[tuple[str, slot_values.SlotValue]] = []
    for name, value in raw_slots.items():
        slot = script.slot(name) if script is not None else None
        if slot is None:
            return None
        if value is None or value == "":
            continue
        if slot.type == "number" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if not slot_values.validate(slot, value):
            return None
        if _grounded(slot, value, text):
            found.append((name, value))
    symptoms = data.get("urgent_symptoms") or []
    if not isinstance(symptoms, list) or not all(isinstance(s, str) for s in symptoms):
        return None
    category = data.get("emergency_category")
    if category is not None and category not in EMERGENCY_CATEGORIES:
        category = None
    procedure = data.get("procedure")
    if procedure is not None and catalog.script(str(procedure)) is None:
        return None
    chosen: str | None = str(intent) if confidence >= MIN_CONFIDENCE else None
    for key, flag_intent in FLAG_INTENTS:
        if flags[key]:
            chosen = flag_intent
            break
    return LLMUnderstanding(
        intent=chosen,
        confidence=float(confidence),
        source="llm",
        llm_slots=tuple(found),
        urgent_symptoms=tuple(s.strip()[:80] for s in symptoms[:5] if s.strip()),
        safety=SafetyVerdict(urgent=True, category=category) if chosen == "urgent" else NOT_URGENT,
        procedure=str(procedure) if procedure else None,
    )


def _faq_for(intent: str | None, catalog: Catalog, script: Script | None) -> Any:
    """The FAQ a specific question intent points to; ``ask_info`` is too broad to pick one."""
    if intent not in QUESTION_INTENTS or intent == "ask_info":
        return None
    pools = [*(script.faq if script else ()), *catalog.clinic.faq]
    return next((faq for faq in pools if faq.intent == intent), None)


def understand_with_llm(
    llm: LLM,
    *,
    catalog: Catalog,
    script: Script | None,
    conv: Mapping[str, Any],
    history: Sequence[Mapping[str, Any]],
    text: str,
    local: Understanding,
    today: date,
    budget_s: float | None = None,
) -> tuple[Understanding, LLMCall | None]:
    """Gemini's reading of a message the local cascade is not sure of.

    Returns the new understanding (an :class:`LLMUnderstanding`, ``source="llm"``) or
    ``local`` unchanged when the LLM is not worth asking, fails, or answers anything that
    does not validate; and the call made (None when none was). The local choice and FAQ
    always stay; a safety flag the LLM raises (urgent, medical advice, human, complaint)
    decides the intent. Urgency only goes up: a local urgent verdict is never asked about,
    and Gemini's urgent verdict joins the local safety evidence.
    """
    if not worth_asking(catalog, script, conv, text, local, today):
        return local, None
    step = _step(script, conv)
    reply = llm.generate(
        purpose="understand",
        system=understand_system(catalog, script, step),
        prompt=data_block(conversa_recente=history_data(history), mensagem=clean(text)),
        schema=understanding_schema(catalog, script, routing=step is None),
        budget_s=budget_s,
    )
    if reply.data is None:
        return local, reply.call
    parsed = parse_understanding(reply.data, catalog, script, text)
    if parsed is None:
        logger.info("gemini understand: reply did not validate; local result stands")
        return local, replace(reply.call, outcome="malformed")
    intent = parsed.intent
    safety = local.safety
    if parsed.safety.urgent:
        safety = replace(
            local.safety,
            urgent=True,
            sure=True,
            category=local.safety.category or parsed.safety.category,
        )
    scripts = local.scripts
    if not scripts and step is None and parsed.procedure:
        scripts = (parsed.procedure,)
    result = replace(
        parsed,
        intent=intent,
        red_flags=local.red_flags,
        choice=local.choice,
        faq=local.faq or _faq_for(intent, catalog, script),
        faq_score=local.faq_score,
        scripts=scripts,
        script_score=local.script_score,
        ranked=local.ranked,
        safety=safety,
    )
    return result, reply.call


# -- grounded answers --------------------------------------------------------------------------


def answer_with_llm(
    llm: LLM,
    *,
    catalog: Catalog,
    script: Script | None,
    question: str,
    history: Sequence[Mapping[str, Any]],
    budget_s: float | None = None,
) -> tuple[str | None, LLMCall | None]:
    """A short answer grounded on the clinic's facts and FAQ, post-checked.

    Returns (text, call): the checked answer; ``texts.llm_unknown`` (or
    :data:`LLM_UNKNOWN_TEXT`) when the facts do not hold the answer or the answer breaks a
    non-medical rule; ``texts.medical_advice`` when it breaks a medical one; None when the
    call failed or its reply was unusable (the dialogue then says it did not understand).
    """
    if not has_letters_or_digits(question):
        return None, None
    reply = llm.generate(
        purpose="answer",
        system=answer_system(catalog, script),
        prompt=data_block(conversa_recente=history_data(history), pergunta=clean(question)),
        schema=ANSWER_SCHEMA,
        budget_s=budget_s,
    )
    data = reply.data
    if data is None:
        return None, reply.call
    answer, grounded = data.get("answer"), data.get("grounded")
    if not isinstance(answer, str) or not isinstance(grounded, bool):
        return None, replace(reply.call, outcome="malformed")
    answer = " ".join(answer.split())
    if not grounded or not answer:
        return _safe_text(catalog, "llm_unknown"), reply.call
    violations = check_answer(answer, catalog)
    if violations:
        logger.info(
            "gemini answer blocked by the post-check: %s", [v.split(":")[0] for v in violations]
        )
        key = "medical_advice" if is_medical(violations) else "llm_unknown"
        return _safe_text(catalog, key), reply.call
    return answer, reply.call


# -- hand-off summary --------------------------------------------------------------------------


def summarize_with_llm(
    llm: LLM,
    *,
    catalog: Catalog,
    script: Script | None,
    slots: Mapping[str, Any],
    reason: str,
    history: Sequence[Mapping[str, Any]],
    budget_s: float | None = None,
) -> tuple[str | None, LLMCall | None]:
    """A 2–3 line summary of what the patient wants, for the secretary; None on any doubt."""
    system = summary_system(catalog, script, slots, reason)
    reply = llm.generate(
        purpose="summary",
        system=system,
        prompt=data_block(conversa_recente=history_data(history)),
        schema=SUMMARY_SCHEMA,
        budget_s=budget_s,
    )
    if reply.data is None:
        return None, reply.call
    summary = reply.data.get("summary")
    if not isinstance(summary, str):
        return None, replace(reply.call, outcome="malformed")
    summary = "\n".join(
        " ".join(line.split()) for line in summary.strip().splitlines() if line.strip()
    )
    violations = check_summary(summary, catalog)
    if violations:
        logger.info("gemini summary blocked: %s", [v.split(":")[0] for v in violations])
        return None, reply.call
    return summary, reply.call


__all__ = [
    "LLM_UNKNOWN_TEXT",
    "LLMUnderstanding",
    "answer_with_llm",
    "parse_understanding",
    "summarize_with_llm",
    "understand_with_llm",
    "understanding_schema",
    "worth_asking",
]
