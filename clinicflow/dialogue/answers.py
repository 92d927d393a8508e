"""Small answers: the FAQ for each question of a message, thanks, a goodbye that is meant.

Pure decisions over :class:`~clinicflow.understanding.Understanding` values; the dialogue says
what they pick.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from clinicflow.dialogue import clauses
from clinicflow.dialogue.conversation import Conversation
from clinicflow.dialogue.turn import Part, Turn
from clinicflow.dialogue.voice import Voice
from clinicflow.model import FAQ, Script
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
        "privacy_request",
        "urgent",
        "bot_check",
        "medical_advice",
    }
)
_FIRM = ("rule", "choice", "llm")

# Answers a question the FAQ does not cover, grounded on the catalog (see clinicflow.gemini);
# returns the text to send, or None when it cannot answer safely.
Answerer = Callable[[Conversation, Turn, Script | None], str | None]
# The closest FAQ to a text among the clinic's and a script's, with its similarity.
FaqFinder = Callable[[str, Script | None], tuple[FAQ | None, float]]


# Intents acted on at any accepted guess: saying "I am a virtual assistant" or passing a data
# request to a person costs little when wrong; missing either breaks a promise (honesty, LGPD).
_ACTS_ON_A_GUESS = frozenset({"bot_check", "privacy_request"})


def acts_on(u: Understanding) -> bool:
    """Whether an intent is firm enough to hand off or jump for: rules, choices, the LLM, or
    the model above ``intent_sure`` (a weaker guess is only a hint), and any accepted guess
    of a bot check or a data request."""
    return u.source != "model" or u.sure or u.intent in _ACTS_ON_A_GUESS


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


class Answers:
    """Says the answers: the FAQ's for each question of a message, or Gemini's grounded one."""

    def __init__(
        self,
        voice: Voice,
        faq_accept: float,
        faq_finder: FaqFinder | None = None,
        answerer: Answerer | None = None,
    ) -> None:
        self.voice = voice
        self.faq_accept = faq_accept
        self.faq_finder = faq_finder
        self.answerer = answerer

    def answer_questions(
        self, conv: Conversation, turn: Turn, *, script: Script | None = None
    ) -> bool:
        """Say the FAQ answer of each question in the message, in order. A question no
        clause's reading answered is looked up among the FAQ of ``script`` (default: the
        conversation's) and the clinic's: "queria saber se dói colocar" finds "Dói colocar o
        DIU?". True if anything was answered."""
        pieces = turn.pieces()
        said = False
        found = dict(answers(pieces, self.faq_accept))
        script = script or self.voice.script_of(conv)
        if self.faq_finder is not None:
            for index, part in enumerate(pieces):
                if index in found or index in turn.answered or not part.question:
                    continue
                faq, score = self.faq_finder(clauses.core(part.text), script)
                if faq is not None and score >= self.faq_accept:
                    found[index] = faq
        for index in sorted(found):
            if index in turn.answered:
                continue
            faq = found[index]
            if any(e.type == "faq_answered" and e.data.get("faq") == faq.id for e in turn.events):
                continue
            turn.answered.add(index)
            conv.repairs = 0
            u = pieces[index].understanding
            turn.event("faq_answered", faq=faq.id, intent=u.intent or "")
            self.voice.say(conv, turn, faq.answer)
            said = True
        return said

    def answer_waiting(self, conv: Conversation, turn: Turn, script: Script | None) -> bool:
        """While she waits for a person who is not there yet (closed): FAQ answers only."""
        said = self.answer_questions(conv, turn, script=script)
        if said:
            turn.event("answered_while_waiting")
        return said

    def generated(
        self, conv: Conversation, turn: Turn, u: Understanding, script: Script | None
    ) -> bool:
        """A grounded, checked answer from the LLM to a question the FAQ does not cover."""
        if self.answerer is None or u.intent not in (*QUESTION_INTENTS, None):
            return False
        answer = self.answerer(conv, turn, script)
        if not answer:
            return False
        conv.repairs = 0
        turn.answered.add(0)
        turn.event("llm_answered")
        turn.replies.append(answer)
        return True
