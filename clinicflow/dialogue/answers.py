"""Small answers: the FAQ for each question of a message, thanks, a goodbye that is meant.

Pure decisions over :class:`~clinicflow.understanding.Understanding` values; the dialogue says
what they pick.
"""

from __future__ import annotations

from collections.abc import Sequence

from clinicflow.dialogue.turn import Part
from clinicflow.model import FAQ
from clinicflow.text import words
from clinicflow.understanding import QUESTION_INTENTS, Understanding

# Requests and small talk: a question mark on them does not make a question to answer later.
_NOT_QUESTIONS = frozenset(
    {
        "schedule",
        "human",
        "complaint",
        "reschedule_cancel",
        "greeting",
        "thanks",
        "goodbye",
        "affirm",
        "deny",
        "opt_out",
        "urgent",
        "bot_check",
        "medical_advice",
    }
)
_FIRM = ("rule", "choice", "llm")


def acts_on(u: Understanding) -> bool:
    """Whether an intent is firm enough to hand off or jump for: rules, choices, the LLM, or
    the model above ``intent_sure`` (a weaker guess is only a hint)."""
    return u.source != "model" or u.sure


def faq_of(u: Understanding, faq_accept: float) -> FAQ | None:
    """The FAQ that answers a clause, if one does: its question intent's FAQ, or a close
    one found by similarity for anything else."""
    if u.faq is None:
        return None
    off_topic = u.intent is not None and u.intent not in QUESTION_INTENTS
    if off_topic and u.faq_score < faq_accept:
        return None
    return u.faq


def answers(parts: Sequence[Part], faq_accept: float) -> list[tuple[int, FAQ]]:
    """The FAQ answering each question of a message, in order, each FAQ once."""
    out: list[tuple[int, FAQ]] = []
    seen: set[str] = set()
    several = len(parts) > 1
    for index, part in enumerate(parts):
        if several and not part.question:
            continue
        faq = faq_of(part.understanding, faq_accept)
        if faq is not None and faq.id not in seen:
            seen.add(faq.id)
            out.append((index, faq))
    return out


def open_question(part: Part) -> bool:
    """A question the bot should have answered (not a request or small talk)."""
    u = part.understanding
    return part.question and u.intent not in _NOT_QUESTIONS and not u.urgent


def firm_goodbye(u: Understanding, text: str, keywords: Sequence[str]) -> bool:
    """A goodbye meant as one: said by rule or the LLM, or by the model, sure, in more than
    one word or with a goodbye word ("tchau"); never a one-word guess ("amanhã")."""
    if u.intent != "goodbye":
        return False
    if u.source in _FIRM:
        return True
    if u.source != "model" or not u.sure:
        return False
    tokens = words(text)
    said = " ".join(tokens)
    has_keyword = any(f" {k} " in f" {said} " for k in keywords)
    return has_keyword or len(tokens) > 1


def social(u: Understanding, text: str, goodbye_keywords: Sequence[str]) -> str | None:
    """Small talk: ``"thanks"`` or ``"goodbye"`` (the clinic text that answers it),
    ``"greeting"`` (nothing to say, ask again), or None. A goodbye must be meant."""
    if u.intent == "thanks":
        return "thanks"
    if u.intent == "goodbye":
        return "goodbye" if firm_goodbye(u, text, goodbye_keywords) else None
    return "greeting" if u.intent == "greeting" else None
