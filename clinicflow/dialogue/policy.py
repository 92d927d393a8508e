"""The dialogue policy: what the bot does with one understood message.

:class:`Dialogue` dispatches a turn to the step the conversation is on — choosing a
procedure, a question (``collect``), a menu, or a step waiting for an intent — and moves the
script's state machine. It works on a typed :class:`~clinicflow.dialogue.Conversation` and a
:class:`~clinicflow.dialogue.Turn`; what it says comes from the catalog (:mod:`.voice`),
slot values from :mod:`.filling`, FAQ answers from :mod:`.answers`, hand-offs from
:mod:`.handoff`, the procedure from :mod:`.routing`.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date
from zoneinfo import ZoneInfo

from clinicflow import slots as slot_values
from clinicflow.dialogue import answers, filling
from clinicflow.dialogue.answers import Answerer, Answers, FaqFinder, acts_on
from clinicflow.dialogue.conversation import ROUTING, Conversation
from clinicflow.dialogue.filling import SlotKeeper
from clinicflow.dialogue.handoff import Desk
from clinicflow.dialogue.machine import Machine
from clinicflow.dialogue.routing import Router
from clinicflow.dialogue.turn import Turn
from clinicflow.dialogue.voice import Voice
from clinicflow.flow import Flow
from clinicflow.hours import BusinessHours
from clinicflow.model import Catalog, Script, Slot, State
from clinicflow.text import PhraseMatcher, fold, normalize, words
from clinicflow.understanding import QUESTION_INTENTS, Understanding

DEFAULT_MAX_ATTEMPTS = 3
REPAIR_BUDGET = 3  # consecutive turns not understood before a human is called

# Words that ask for an appointment, not only show interest ("quero colocar DIU" does not).
_BOOKING_WORDS_RE = re.compile(r"\b(?:marc|agend|horario|vaga|encaix)")

ESCALATIONS = {
    "human": "human_request",
    "complaint": "complaint",
    "reschedule_cancel": "schedule",
    "privacy_request": "data_request",
}


def _menu_matcher(state: State) -> PhraseMatcher:
    assert state.menu is not None
    return PhraseMatcher(
        (str(n), phrase)
        for n, item in enumerate(state.menu.items, start=1)
        for phrase in (item.label, *item.synonyms)
    )


class Dialogue:
    """The policy over one catalog and its flows (shared, read-only).

    Args:
        catalog: the loaded catalog.
        scripts: every script version still referenced, by digest.
        flows: their state machines, by digest.
        answerer: Gemini's grounded answers (None: FAQ only).
        hours: opening hours (None: always open).
        faq_finder: finds a script's FAQ for a question asked before the script was chosen.
    """

    def __init__(
        self,
        catalog: Catalog,
        scripts: dict[str, Script],
        flows: dict[str, Flow],
        answerer: Answerer | None = None,
        hours: BusinessHours | None = None,
        faq_finder: FaqFinder | None = None,
    ):
        self.catalog = catalog
        self.clinic = catalog.clinic
        self.scripts = scripts
        self.flows = flows
        self.answerer = answerer
        self.hours = hours
        self.faq_finder = faq_finder
        self.voice = Voice(catalog, scripts)
        self.desk = Desk(self.voice, hours)
        self.tz = ZoneInfo(self.clinic.hours.timezone)
        self.keeper = SlotKeeper(self.voice, self.tz)
        self.answers = Answers(
            self.voice, self.clinic.understanding.faq_accept, faq_finder, answerer
        )
        self.router = Router(catalog)
        self.machine = Machine(self.voice, self.desk, flows)
        goodbye = self.clinic.intent("goodbye")
        self.goodbye_words = tuple(normalize(k) for k in (goodbye.keywords if goodbye else ()))
        self._menus: dict[tuple[str, str], PhraseMatcher] = {}

    # -- helpers ----------------------------------------------------------------------------

    def script_of(self, conv: Conversation) -> Script | None:
        return self.voice.script_of(conv)

    def today(self, turn: Turn) -> date:
        return self.keeper.today(turn)

    def say(self, conv: Conversation, turn: Turn, template: str, **extra: str) -> None:
        self.voice.say(conv, turn, template, **extra)

    def text(self, key: str) -> str:
        return self.voice.text(key)

    # -- entering scripts and states -------------------------------------------------------

    def start_script(self, conv: Conversation, turn: Turn, script: Script) -> None:
        """Put the conversation on ``script`` and enter its first step: the bot introduces
        itself (once per conversation), answers what she asked, takes what she already said."""
        self.machine.select(conv, turn, script)
        self.voice.introduce(conv, turn)
        self.keeper.absorb(conv, turn, script, [*conv.notes, turn.text])
        conv.notes = []
        self.answers.answer_questions(conv, turn, script=script)
        first = script.state(script.start)
        if conv.booking and (not first.collect or conv.slots.get(first.collect) is not None):
            # She asked to book and already said what the first step asks: book now.
            conv.state = script.start
            self.book(conv, turn)
            return
        self.enter(conv, turn, script.start)

    def enter(self, conv: Conversation, turn: Turn, name: str) -> None:
        self.machine.enter(conv, turn, name)

    def leave(self, conv: Conversation, turn: Turn, state: State) -> None:
        if conv.booking:
            self.book(conv, turn)
            return
        self.machine.leave(conv, turn, state, 0)

    def book(self, conv: Conversation, turn: Turn) -> None:
        """The booking she asked for with the procedure, once the first question is answered:
        the script's own state for ``schedule`` (a hand-off)."""
        conv.booking = False
        turn.event("booking_honoured")
        self.escalate(conv, turn, "schedule")

    def reprompt(self, conv: Conversation, turn: Turn) -> None:
        """Ask again for what the current step is waiting for."""
        self.machine.reprompt(conv, turn)

    def routing_menu(self, conv: Conversation, turn: Turn, intro: bool = True) -> None:
        self.machine.routing_menu(conv, turn, intro=intro)

    # -- the step ---------------------------------------------------------------------------

    def step(self, conv: Conversation, turn: Turn) -> None:
        """Advance the conversation with the understood message."""
        u = turn.understanding
        assert u is not None
        firm = u.intent in (*ESCALATIONS, "opt_out") and acts_on(u)
        if not firm and not u.urgent and filling.booking_request(turn.text, self.today(turn)):
            # "posso ir amanhã de manhã?": a day or period with a request to come is booking,
            # whatever the classifier guessed; never "não entendi".
            u = replace(u, intent="schedule", sure=True)
            turn.understanding = u
            turn.event("booking_request")
        day = self.keeper.notice(conv, turn)
        script = self.script_of(conv)
        if script is None or not conv.in_script:
            self.step_routing(conv, turn, u)
        else:
            self.step_script(conv, turn, script, u, day)
        for index, part in enumerate(turn.pieces()):
            if index not in turn.answered and answers.open_question(part):
                conv.ask_later(part.text)

    def step_routing(self, conv: Conversation, turn: Turn, u: Understanding) -> None:
        # Before a procedure is chosen, a firm request for a person or a complaint pre-empts
        # routing; so does booking when no procedure is named. Booking a named procedure
        # ("Oi, quero colocar DIU") starts its script: the secretary gets the procedure and
        # the answers the script collects, and the script's own booking step follows.
        escalation = u.intent in ESCALATIONS or u.intent == "schedule"
        names = bool(u.scripts or u.similar_script)
        booking_named = u.intent == "schedule" and names
        if escalation and acts_on(u) and not booking_named:
            self.escalate(conv, turn, str(u.intent))
            return
        if booking_named:
            turn.event("booking_wanted")
            # Asked for an appointment (not only interest): hand off once she has answered
            # the script's first question, so the secretary has her name and the procedure.
            conv.booking = acts_on(u) and bool(_BOOKING_WORDS_RE.search(fold(turn.text)))
        first = conv.state != ROUTING
        chosen = self.router.pick(u, turn.text, at_menu=not first)
        if chosen is not None:
            conv.repairs = 0
            self.start_script(conv, turn, chosen)
            return
        conv.note(turn.text)
        if first and (u.intent in ("greeting", None) or u.intent in QUESTION_INTENTS):
            self.voice.introduce(conv, turn)
        if self.answers.answer_questions(conv, turn):
            self.routing_menu(conv, turn, intro=False)
            return
        if first and (u.intent in ("greeting", None) or u.intent in QUESTION_INTENTS):
            self.routing_menu(conv, turn, intro=True)
            return
        small = answers.social(u, turn.text, self.goodbye_words)
        if small in ("thanks", "goodbye"):
            self.say(conv, turn, self.text(small))
            return
        self.not_understood(conv, turn)

    def step_script(
        self, conv: Conversation, turn: Turn, script: Script, u: Understanding, day: str | None
    ) -> None:
        assert conv.state is not None
        state = script.state(conv.state)
        slot = script.slot(state.collect) if state.collect else None
        if u.scripts and script.id not in u.scripts and self.switch_requested(turn, slot):
            target = self.catalog.script(u.scripts[0])
            if target is not None:
                self.start_script(conv, turn, target)
                return
        if self.keeper.correct(conv, turn, script, slot):
            self.answers.answer_questions(conv, turn)
            self.reprompt(conv, turn)
            return
        if (u.intent in ESCALATIONS or u.intent == "schedule") and acts_on(u):
            # A request wins even over a slot answer in the same message ("sou a Ana, quero
            # marcar"): take what she said, then escalate. An intent is no yes/no answer.
            if slot is not None:
                answer = filling.is_answer(u, slot, turn.text)
                self.keeper.fill(conv, turn, script, slot, [turn.text] if answer else [])
            else:
                self.keeper.absorb(conv, turn, script, [turn.text])
            self.answers.answer_questions(conv, turn)
            self.escalate(conv, turn, str(u.intent))
            return
        if slot is not None:
            self.step_collect(conv, turn, script, state, slot, u, day)
            return
        self.keeper.absorb(conv, turn, script, [turn.text])
        if state.menu:
            self.step_menu(conv, turn, script, state, u)
        else:
            self.step_waiting(conv, turn, script, state, u)

    def switch_requested(self, turn: Turn, slot: Slot | None) -> bool:
        """Another procedure named counts as a switch unless it answers the current choice."""
        if slot is None or slot.type != "choice":
            return True
        return slot_values.parse(slot, turn.text, self.today(turn)) is None

    def escalate(self, conv: Conversation, turn: Turn, intent: str) -> None:
        """Booking, a person, a complaint: the script's own state for it, else a hand-off."""
        script = self.script_of(conv)
        target: str | None = None
        if script is not None and conv.in_script:
            assert conv.digest is not None and conv.state is not None
            target = self.flows[conv.digest].fire(conv.state, f"intent_{intent}", conv.slots)
        elif script is not None:
            target = dict(script.on).get(intent)
        if target is not None:
            turn.event("intent_transition", intent=intent, to=target)
            self.enter(conv, turn, target)
            return
        self.handoff(conv, turn, "schedule" if intent == "schedule" else ESCALATIONS[intent])

    def step_collect(
        self,
        conv: Conversation,
        turn: Turn,
        script: Script,
        state: State,
        slot: Slot,
        u: Understanding,
        day: str | None,
    ) -> None:
        pieces = turn.pieces()
        if len(pieces) > 1 and any(p.question for p in pieces):
            # An answer and a question ("nunca usei. vcs tem estacionamento?"), or several
            # questions: the answer fills the slot, every question gets its answer, and the
            # script moves on.
            texts = [
                p.text
                for p in pieces
                if not p.question and filling.is_answer(p.understanding, slot, p.text)
            ]
            filled = self.keeper.fill(conv, turn, script, slot, texts)
            answered = self.answers.answer_questions(conv, turn)
            if filled:
                conv.repairs = 0
                self.leave(conv, turn, state)
                return
            if answered:
                self.reprompt(conv, turn)
                return
        asks = u.faq is not None or u.intent in QUESTION_INTENTS
        # A question is answered before the message is read as an answer: always for free
        # text, and for other types when the patient actually asked something.
        question_first = asks and (slot.type == "text" or "?" in turn.text)
        texts = [turn.text] if filling.is_answer(u, slot, turn.text) else []
        if not question_first and self.keeper.fill(conv, turn, script, slot, texts):
            conv.repairs = 0
            self.leave(conv, turn, state)
            return
        if self.answers.answer_questions(conv, turn):
            self.reprompt(conv, turn)
            return
        target = self.intent_target(conv, state, u, turn)
        if target is not None:
            self.enter(conv, turn, target)
            return
        if question_first and self.keeper.fill(conv, turn, script, slot, texts):
            self.leave(conv, turn, state)
            return
        if day and slot.type in ("period", "date") and conv.slots.get(slot.name) is None:
            # "amanhã" when asked for the period: a day, kept for the secretary; ask again.
            turn.event("day_noted", slot=slot.name)
            self.say(conv, turn, self.text("date_noted"), quando=day)
            self.voice.ask(conv, turn, slot)
            return
        small = answers.social(u, turn.text, self.goodbye_words)
        if small is not None:
            if small != "greeting":
                self.say(conv, turn, self.text(small))
            self.reprompt(conv, turn)
            return
        if any(p.question and words(p.text) for p in turn.pieces()):
            # A question the bot cannot answer ("cadê vocês???"; a bare "???" is none) is no
            # wrong answer: it spends no attempt (the step is neither skipped nor given up),
            # goes to the brief, and she is asked again; the repair budget calls a person.
            self.not_understood(conv, turn)
            return
        self.slot_failed(conv, turn, script, state, slot)

    def intent_target(
        self, conv: Conversation, state: State, u: Understanding, turn: Turn
    ) -> str | None:
        """The state an understood intent leads to from here (weak guesses lead nowhere, and
        only a goodbye that is meant ends the conversation)."""
        if not u.intent or not acts_on(u):
            return None
        if u.intent == "goodbye" and not answers.firm_goodbye(u, turn.text, self.goodbye_words):
            return None
        assert conv.digest is not None
        target = self.flows[conv.digest].fire(state.name, f"intent_{u.intent}", conv.slots)
        if target is not None and u.intent in QUESTION_INTENTS:
            turn.answered.add(0)  # the state it leads to answers the question
        return target

    def slot_failed(
        self, conv: Conversation, turn: Turn, script: Script, state: State, slot: Slot
    ) -> None:
        assert conv.digest is not None
        attempts = conv.attempts.get(slot.name, 0) + 1
        conv.attempts[slot.name] = attempts
        limit = slot.max_attempts or DEFAULT_MAX_ATTEMPTS
        if attempts >= limit:
            turn.event("slot_exhausted", slot=slot.name)
            action = slot.on_exhausted.action if slot.on_exhausted else "handoff"
            if action == "skip":
                self.leave(conv, turn, state)
                if conv.state == state.name:  # nowhere to go: keep waiting, stop asking
                    self.handoff(conv, turn, "not_understood")
            elif action == "goto":
                target = self.flows[conv.digest].fire(state.name, "exhausted", conv.slots)
                if target is not None:
                    self.enter(conv, turn, target)
            else:
                reason = slot.on_exhausted.target if slot.on_exhausted else None
                self.handoff(conv, turn, reason or "not_understood")
            return
        turn.event("reprompt", slot=slot.name, attempt=attempts)
        texts = slot.reprompts or (slot.ask,)
        self.say(conv, turn, texts[min(attempts - 1, len(texts) - 1)])

    def step_menu(
        self, conv: Conversation, turn: Turn, script: Script, state: State, u: Understanding
    ) -> None:
        assert state.menu is not None and conv.digest is not None
        count = len(state.menu.items)
        number = u.choice if u.choice is not None else slot_values.option_number(turn.text, count)
        if number is None:
            key = (conv.digest, state.name)
            matcher = self._menus.get(key) or self._menus.setdefault(key, _menu_matcher(state))
            keys = matcher.keys(turn.text)
            number = int(keys[0]) if len(keys) == 1 else None
        if number is not None and 1 <= number <= count:
            turn.event("menu_choice", option=number)
            conv.repairs = 0
            target = self.flows[conv.digest].fire(state.name, f"choose_{number}", conv.slots)
            if target is not None:
                self.enter(conv, turn, target)
            return
        self.step_waiting(conv, turn, script, state, u)

    def step_waiting(
        self, conv: Conversation, turn: Turn, script: Script, state: State, u: Understanding
    ) -> None:
        if sum(p.question for p in turn.pieces()) > 1 and self.answers.answer_questions(conv, turn):
            self.reprompt(conv, turn)  # several questions: every answer, then the step again
            return
        target = self.intent_target(conv, state, u, turn)
        if target is not None:
            conv.repairs = 0
            turn.event("intent_transition", intent=u.intent, to=target)
            self.enter(conv, turn, target)
            return
        if self.answers.answer_questions(conv, turn):
            self.reprompt(conv, turn)
            return
        small = answers.social(u, turn.text, self.goodbye_words)
        if small is not None:
            if small != "greeting":
                self.say(conv, turn, self.text(small))
            if state.menu or state.collect:
                self.reprompt(conv, turn)
            return
        if state.llm_answers and self.answers.generated(conv, turn, u, script):
            self.reprompt(conv, turn)
            return
        self.not_understood(conv, turn)

    def answer_waiting(self, conv: Conversation, turn: Turn) -> bool:
        """While she waits for a person who is not there yet (closed): FAQ answers only."""
        return self.answers.answer_waiting(conv, turn, self.script_of(conv))

    def not_understood(self, conv: Conversation, turn: Turn) -> None:
        conv.repairs += 1
        turn.event("not_understood", repairs=conv.repairs)
        if conv.repairs >= REPAIR_BUDGET:
            self.handoff(conv, turn, "not_understood")
            return
        self.say(conv, turn, self.text("not_understood"))
        self.reprompt(conv, turn)

    # -- terminal outcomes ------------------------------------------------------------------

    def handoff(
        self,
        conv: Conversation,
        turn: Turn,
        reason: str,
        *,
        urgent: bool = False,
        announce: bool = True,
        resume: str | None = None,
        note: str = "",
        category: str | None = None,
    ) -> None:
        self.desk.hand_off(
            conv,
            turn,
            reason,
            urgent=urgent,
            announce=announce,
            resume=resume,
            note=note,
            category=category,
        )

    def urgent_notice(self, conv: Conversation, turn: Turn, category: str | None) -> None:
        self.desk.urgent_notice(conv, turn, category)

    def close(self, conv: Conversation, turn: Turn, why: str) -> None:
        self.machine.close(conv, turn, why)
