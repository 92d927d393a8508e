"""The dialogue policy: what the bot does with one understood message.

Operates on the conversation's JSON-plain state (a dict checkpointed by LangGraph) and a
:class:`Turn` that collects the replies and events of this turn. Everything a patient reads
comes from the catalog's texts, rendered with :func:`clinicflow.templates.render`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from clinicflow import slots as slot_values
from clinicflow.clock import iso
from clinicflow.flow import Flow
from clinicflow.hours import BusinessHours
from clinicflow.model import Catalog, Menu, Script, Slot, State
from clinicflow.templates import render
from clinicflow.text import PhraseMatcher
from clinicflow.understanding import QUESTION_INTENTS, Understanding
from clinicflow.understanding.safety import guidance_key

MAX_HOPS = 25  # automatic transitions in one turn before the bot gives up (lint finds loops)
DEFAULT_MAX_ATTEMPTS = 3
REPAIR_BUDGET = 3  # consecutive turns not understood before a human is called
ROUTING = "__routing__"  # pseudo-state: the patient is choosing a procedure

ESCALATIONS = {
    "human": "human_request",
    "complaint": "complaint",
    "reschedule_cancel": "schedule",
    "privacy_request": "data_request",
}


@functools.lru_cache(maxsize=512)
def _menu_matcher(menu: Menu) -> PhraseMatcher:
    """A menu's options by label and synonyms, built once per menu (menus are frozen)."""
    return PhraseMatcher(
        (str(n), phrase)
        for n, item in enumerate(menu.items, start=1)
        for phrase in (item.label, *item.synonyms)
    )


def acts_on(u: Understanding) -> bool:
    """Whether an intent is firm enough to hand off or jump for: rules, choices, the LLM, or
    the model above ``intent_sure`` (a weaker guess is only a hint)."""
    return u.source != "model" or u.sure


# Answers a question the FAQ does not cover, grounded on the catalog (see clinicflow.gemini);
# returns the text to send, or None when it cannot answer safely.
Answerer = Callable[[dict[str, Any], "Turn", Script | None], str | None]


@dataclass
class Event:
    """Something that happened in a turn (stored in the events table)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    """The working data of one turn; never checkpointed."""

    chat_id: str
    text: str
    now: datetime
    replies: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    understanding: Understanding | None = None
    silent: bool = False
    handled: bool = False  # a node already answered; later nodes only re-prompt or stop
    handoff: dict[str, Any] | None = None
    llm_calls: list[Any] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # channel id, push name, referral, kind
    started: float = 0.0  # time.perf_counter() when the turn began (the LLM time budget)
    conv: dict[str, Any] = field(default_factory=dict)  # working copy of the graph state

    def event(self, type_: str, **data: Any) -> None:
        self.events.append(Event(type_, data))


class Dialogue:
    """The policy over one catalog and its flows (shared, read-only)."""

    def __init__(
        self,
        catalog: Catalog,
        scripts: dict[str, Script],
        flows: dict[str, Flow],
        answerer: Answerer | None = None,
        hours: BusinessHours | None = None,
    ):
        self.catalog = catalog
        self.answerer = answerer
        self.hours = hours
        self.clinic = catalog.clinic
        self.scripts = scripts  # by digest, every version still referenced
        self.flows = flows
        self.tz = ZoneInfo(self.clinic.hours.timezone)
        self._facts = dict(self.clinic.facts)
        self._facts.setdefault("nome", self.clinic.name)
        self._routing_matchers = PhraseMatcher((s.id, s.title) for s in catalog.scripts)

    # -- helpers ----------------------------------------------------------------------------

    def script_of(self, conv: dict[str, Any]) -> Script | None:
        digest = conv.get("digest")
        return self.scripts.get(digest) if digest else None

    def today(self, turn: Turn) -> date:
        return turn.now.astimezone(self.tz).date()

    def say(self, conv: dict[str, Any], turn: Turn, template: str, **extra: str) -> None:
        script = self.script_of(conv)
        values: dict[str, str] = dict(extra)
        if script is not None:
            for name, value in conv.get("slots", {}).items():
                slot = script.slot(name)
                if slot is not None and value is not None:
                    values[name] = slot_values.display(slot, value)
        text = render(template, values, self._facts).strip()
        if text:
            turn.replies.append(text)

    def text(self, key: str) -> str:
        return self.clinic.text(key)

    # -- entering and leaving states --------------------------------------------------------

    def start_script(self, conv: dict[str, Any], turn: Turn, script: Script) -> None:
        self.select_script(conv, turn, script)
        self.enter(conv, turn, script.start)

    def select_script(self, conv: dict[str, Any], turn: Turn, script: Script) -> None:
        """Put the conversation on ``script`` (keeping slots it shares) without entering it."""
        previous = conv.get("script_id")
        conv.update(script_id=script.id, digest=script.digest, version=script.version)
        conv["attempts"] = {}
        conv["repairs"] = 0
        kept = {k: v for k, v in conv.get("slots", {}).items() if script.slot(k) is not None}
        conv["slots"] = kept
        if previous and previous != script.id:
            turn.event("script_switched", **{"from": previous, "to": script.id})
        turn.event("script_entered", script=script.id, version=script.version)

    def enter(self, conv: dict[str, Any], turn: Turn, name: str, hops: int = 0) -> None:
        script = self.script_of(conv)
        assert script is not None
        if hops > MAX_HOPS:
            self.handoff(conv, turn, "not_understood", note="loop")
            return
        previous = conv.get("state")
        conv["state"] = name
        if previous != name:
            turn.event("state_changed", **{"from": previous, "to": name})
        state = script.state(name)
        for template in state.say:
            self.say(conv, turn, template)
        if state.handoff:
            self.handoff(conv, turn, state.handoff, announce=not state.say, resume=previous)
            return
        if state.end:
            self.close(conv, turn, "end")
            return
        if state.collect:
            if conv["slots"].get(state.collect) is not None:
                self.leave(conv, turn, state, hops)
            else:
                conv["attempts"][state.collect] = 0
                slot = script.slot(state.collect)
                if slot is not None:
                    self.ask(conv, turn, slot)
            return
        if state.menu:
            self.show_menu(conv, turn, state)
            return
        self.leave(conv, turn, state, hops)

    def leave(self, conv: dict[str, Any], turn: Turn, state: State, hops: int) -> None:
        """Take the state's automatic way out (``when`` branches, then ``next``), if any."""
        flow = self.flows[conv["digest"]]
        target = flow.fire(state.name, "advance", conv["slots"])
        if target is not None:
            self.enter(conv, turn, target, hops + 1)

    def ask(self, conv: dict[str, Any], turn: Turn, slot: Slot) -> None:
        """Ask for a slot; a choice lists its options with numbers, like a menu."""
        text = slot.ask
        if slot.type == "choice" and slot.options:
            text += "\n" + "\n".join(
                f"{n}. {option.label}" for n, option in enumerate(slot.options, start=1)
            )
        self.say(conv, turn, text)

    def show_menu(self, conv: dict[str, Any], turn: Turn, state: State) -> None:
        assert state.menu is not None
        lines = [state.menu.prompt] if state.menu.prompt else []
        lines += [f"{n}. {item.label}" for n, item in enumerate(state.menu.items, start=1)]
        self.say(conv, turn, "\n".join(lines))

    def reprompt(self, conv: dict[str, Any], turn: Turn) -> None:
        """Ask again for what the current step is waiting for."""
        script = self.script_of(conv)
        if conv.get("state") == ROUTING or script is None:
            self.routing_menu(conv, turn, intro=False)
            return
        state = script.state(conv["state"])
        if state.collect:
            slot = script.slot(state.collect)
            # An answer already given is not asked again (after a hand-back, say).
            if slot is not None and conv.get("slots", {}).get(slot.name) is None:
                self.ask(conv, turn, slot)
        elif state.menu:
            self.show_menu(conv, turn, state)
        elif state.say and state.on:
            self.say(conv, turn, state.say[-1])

    # -- routing ----------------------------------------------------------------------------

    def routing_menu(self, conv: dict[str, Any], turn: Turn, intro: bool = True) -> None:
        conv["state"] = ROUTING
        lines = [self.text("menu_prompt")]
        lines += [f"{n}. {s.title}" for n, s in enumerate(self.catalog.scripts, start=1)]
        if intro:
            self.say(conv, turn, self.text("welcome"))
        self.say(conv, turn, "\n".join(lines))

    def route(self, conv: dict[str, Any], turn: Turn, u: Understanding) -> bool:
        """Pick a script from the message; True when one was entered."""
        chosen: Script | None = None
        routing = conv.get("state") == ROUTING
        if routing and u.choice is not None and 1 <= u.choice <= len(self.catalog.scripts):
            chosen = self.catalog.scripts[u.choice - 1]
        if chosen is None and (u.scripts or u.similar_script):
            chosen = self.catalog.script(u.scripts[0] if u.scripts else str(u.similar_script))
        if chosen is None and conv.get("state") == ROUTING:
            by_title = self._routing_matchers.keys(turn.text)
            if len(by_title) == 1:
                chosen = self.catalog.script(by_title[0])
        if chosen is None:
            return False
        self.start_script(conv, turn, chosen)
        return True

    # -- the step ---------------------------------------------------------------------------

    def step(self, conv: dict[str, Any], turn: Turn) -> None:
        """Advance the conversation with the understood message."""
        u = turn.understanding
        assert u is not None
        script = self.script_of(conv)
        escalation = u.intent in ESCALATIONS or u.intent == "schedule"
        if script is None or conv.get("state") == ROUTING:
            # Before a procedure is chosen, a firm request for a person or a complaint
            # pre-empts routing; so does booking when no procedure is named. Booking a named
            # procedure ("Oi, quero colocar DIU", "gostaria de agendar uma consulta
            # ginecológica") starts its script: the secretary gets the procedure and the
            # answers the script collects, and the script's own booking step follows.
            names = bool(u.scripts or u.similar_script)
            booking_named = u.intent == "schedule" and names
            if escalation and acts_on(u) and not booking_named:
                self.escalate(conv, turn, str(u.intent))
            else:
                if booking_named:
                    turn.event("booking_wanted")
                self.step_routing(conv, turn, u)
            return
        state = script.state(conv["state"])
        slot = script.slot(state.collect) if state.collect else None
        if u.scripts and script.id not in u.scripts and self.switch_requested(conv, turn, slot):
            target = self.catalog.script(u.scripts[0])
            if target is not None:
                self.start_script(conv, turn, target)
                return
        if escalation and acts_on(u):
            # A rule-level request wins even over a slot answer in the same message
            # ("sou a Ana, quero marcar"): take the answer, then escalate.
            if slot is not None:
                self.fill(conv, turn, script, slot)
            self.escalate(conv, turn, str(u.intent))
            return
        if state.collect:
            self.step_collect(conv, turn, script, state, u)
        elif state.menu:
            self.step_menu(conv, turn, script, state, u)
        else:
            self.step_waiting(conv, turn, script, state, u)

    def switch_requested(self, conv: dict[str, Any], turn: Turn, slot: Slot | None) -> bool:
        """Another procedure named counts as a switch unless it answers the current choice."""
        if slot is None or slot.type != "choice":
            return True
        return slot_values.parse(slot, turn.text, self.today(turn)) is None

    def escalate(self, conv: dict[str, Any], turn: Turn, intent: str) -> None:
        """Booking, a person, a complaint: the script's own state for it, else a hand-off."""
        script = self.script_of(conv)
        target: str | None = None
        if script is not None and conv.get("state") not in (None, ROUTING):
            flow = self.flows[conv["digest"]]
            target = flow.fire(conv["state"], f"intent_{intent}", conv["slots"])
        elif script is not None:
            target = dict(script.on).get(intent)
        if target is not None:
            turn.event("intent_transition", intent=intent, to=target)
            self.enter(conv, turn, target)
            return
        self.handoff(conv, turn, "schedule" if intent == "schedule" else ESCALATIONS[intent])

    def step_routing(self, conv: dict[str, Any], turn: Turn, u: Understanding) -> None:
        # "Dói colocar o DIU?" as a first message: answer it, then start the DIU script.
        answered = u.intent in QUESTION_INTENTS and self.answer_faq(conv, turn, u)
        if self.route(conv, turn, u):
            conv["repairs"] = 0
            return
        if answered or self.answer_faq(conv, turn, u):
            self.routing_menu(conv, turn, intro=False)
            return
        first = conv.get("state") != ROUTING
        if first and (u.intent in ("greeting", None) or u.intent in QUESTION_INTENTS):
            self.routing_menu(conv, turn, intro=True)
            return
        if u.intent in ("thanks", "goodbye"):
            self.say(conv, turn, self.text(u.intent))
            return
        self.not_understood(conv, turn)

    def step_collect(
        self, conv: dict[str, Any], turn: Turn, script: Script, state: State, u: Understanding
    ) -> None:
        assert state.collect is not None
        slot = script.slot(state.collect)
        assert slot is not None
        asks = u.faq is not None or u.intent in QUESTION_INTENTS
        # A question is answered before the message is read as an answer: always for free
        # text, and for other types when the patient actually asked something.
        question_first = asks and (slot.type == "text" or "?" in turn.text)
        if not question_first:
            found = self.fill(conv, turn, script, slot)
            if found:
                conv["repairs"] = 0
                self.leave(conv, turn, state, 0)
                return
        if self.answer_faq(conv, turn, u):
            self.reprompt(conv, turn)
            return
        target = self.intent_target(conv, state, u)
        if target is not None:
            self.enter(conv, turn, target)
            return
        if question_first and self.fill(conv, turn, script, slot):
            self.leave(conv, turn, state, 0)
            return
        if self.social(conv, turn, u):
            self.reprompt(conv, turn)
            return
        self.slot_failed(conv, turn, script, state, slot)

    def intent_target(self, conv: dict[str, Any], state: State, u: Understanding) -> str | None:
        """The state an understood intent leads to from here (weak guesses lead nowhere)."""
        if not u.intent or not acts_on(u):
            return None
        return self.flows[conv["digest"]].fire(state.name, f"intent_{u.intent}", conv["slots"])

    def fill(self, conv: dict[str, Any], turn: Turn, script: Script, slot: Slot) -> bool:
        """Take every slot value the message carries; True if the awaited one was filled."""
        # Only empty slots (and the one asked) are filled: an aside never overwrites an answer.
        open_slots = [
            s for s in script.slots if s.name == slot.name or conv["slots"].get(s.name) is None
        ]
        found = slot_values.extract(open_slots, turn.text, self.today(turn), slot.name)
        if turn.understanding is not None:  # what Gemini read, where the local parsers did not
            names = {s.name for s in open_slots}
            for name, value in turn.understanding.llm_slots:
                if name in names:
                    found.setdefault(name, value)
        for name, value in found.items():
            if conv["slots"].get(name) != value:
                conv["slots"][name] = value
                turn.event("slot_filled", slot=name)
        return slot.name in found

    def slot_failed(
        self, conv: dict[str, Any], turn: Turn, script: Script, state: State, slot: Slot
    ) -> None:
        attempts = conv["attempts"].get(slot.name, 0) + 1
        conv["attempts"][slot.name] = attempts
        limit = slot.max_attempts or DEFAULT_MAX_ATTEMPTS
        if attempts >= limit:
            turn.event("slot_exhausted", slot=slot.name)
            action = slot.on_exhausted.action if slot.on_exhausted else "handoff"
            if action == "skip":
                self.leave(conv, turn, state, 0)
                if conv["state"] == state.name:  # nowhere to go: keep waiting, stop asking
                    self.handoff(conv, turn, "not_understood")
            elif action == "goto":
                target = self.flows[conv["digest"]].fire(state.name, "exhausted", conv["slots"])
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
        self, conv: dict[str, Any], turn: Turn, script: Script, state: State, u: Understanding
    ) -> None:
        assert state.menu is not None
        number = u.choice
        if number is None:
            keys = _menu_matcher(state.menu).keys(turn.text)
            number = int(keys[0]) if len(keys) == 1 else None
        if number is not None and 1 <= number <= len(state.menu.items):
            turn.event("menu_choice", option=number)
            conv["repairs"] = 0
            target = self.flows[conv["digest"]].fire(state.name, f"choose_{number}", conv["slots"])
            if target is not None:
                self.enter(conv, turn, target)
            return
        self.step_waiting(conv, turn, script, state, u)

    def step_waiting(
        self, conv: dict[str, Any], turn: Turn, script: Script, state: State, u: Understanding
    ) -> None:
        target = self.intent_target(conv, state, u)
        if target is not None:
            conv["repairs"] = 0
            turn.event("intent_transition", intent=u.intent, to=target)
            self.enter(conv, turn, target)
            return
        if self.answer_faq(conv, turn, u):
            self.reprompt(conv, turn)
            return
        if self.social(conv, turn, u):
            if state.menu or state.collect:
                self.reprompt(conv, turn)
            return
        if state.llm_answers and self.generated_answer(conv, turn, u, script):
            self.reprompt(conv, turn)
            return
        self.not_understood(conv, turn)

    def generated_answer(
        self, conv: dict[str, Any], turn: Turn, u: Understanding, script: Script | None
    ) -> bool:
        """A grounded, checked answer from the LLM to a question the FAQ does not cover."""
        if self.answerer is None or u.intent not in (*QUESTION_INTENTS, None):
            return False
        answer = self.answerer(conv, turn, script)
        if not answer:
            return False
        conv["repairs"] = 0
        turn.event("llm_answered")
        turn.replies.append(answer)
        return True

    # -- small answers ----------------------------------------------------------------------

    def answer_faq(self, conv: dict[str, Any], turn: Turn, u: Understanding) -> bool:
        if u.faq is None:
            return False
        # A FAQ found only by similarity answers a non-question intent when it is close.
        off_topic = u.intent is not None and u.intent not in QUESTION_INTENTS
        if (
            off_topic
            and u.source != "embedding"
            and u.faq_score < self.clinic.understanding.faq_accept
        ):
            return False
        conv["repairs"] = 0
        turn.event("faq_answered", faq=u.faq.id, intent=u.intent or "")
        self.say(conv, turn, u.faq.answer)
        return True

    def social(self, conv: dict[str, Any], turn: Turn, u: Understanding) -> bool:
        """Thanks, goodbye, greeting said by rule (an embedding guess does not count here:
        nonsense near a greeting example must still use up the step's attempts)."""
        if u.source == "embedding":
            return False
        if u.intent == "thanks":
            self.say(conv, turn, self.text("thanks"))
            return True
        if u.intent == "goodbye":
            self.say(conv, turn, self.text("goodbye"))
            return True
        return u.intent == "greeting"

    def not_understood(self, conv: dict[str, Any], turn: Turn) -> None:
        conv["repairs"] = conv.get("repairs", 0) + 1
        turn.event("not_understood", repairs=conv["repairs"])
        if conv["repairs"] >= REPAIR_BUDGET:
            self.handoff(conv, turn, "not_understood")
            return
        self.say(conv, turn, self.text("not_understood"))
        self.reprompt(conv, turn)

    # -- terminal outcomes ------------------------------------------------------------------

    def handoff(
        self,
        conv: dict[str, Any],
        turn: Turn,
        reason: str,
        *,
        urgent: bool = False,
        announce: bool = True,
        resume: str | None = None,
        note: str = "",
        category: str | None = None,
    ) -> None:
        if urgent:
            self.urgent_notice(conv, turn, category)
            notify_at = None
        else:
            notify_at = self.closed_notice(conv, turn, announce=announce, reason=reason)
        conv["status"] = "waiting_human"
        conv["resume_state"] = resume if resume is not None else conv.get("state")
        conv["handoff_reason"] = reason
        conv["urgent"] = bool(urgent or conv.get("urgent"))
        u = turn.understanding
        flags = [*u.red_flags, *u.urgent_symptoms] if u is not None and urgent else []
        turn.handoff = {
            "reason": reason,
            "urgent": bool(urgent),
            "red_flags": flags,
            "category": category,
            "sure": u.safety.sure if u is not None and urgent else True,
            "notify_at": notify_at,  # None: tell the staff now; else at the next opening
        }
        turn.event(
            "handoff_requested", reason=reason, urgent=bool(urgent), note=note, queued=notify_at
        )

    def urgent_notice(self, conv: dict[str, Any], turn: Turn, category: str | None) -> None:
        """Where to go now, in the words of the emergency's category (SAMU 192; CVV 188 only
        for self-harm; 190/180 for violence); when the clinic is closed, also when a person
        will answer and the emergency numbers (the staff are alerted at once either way)."""
        self.say(conv, turn, self.guidance("urgent", category))
        if self.hours is not None and not self.hours.is_open(turn.now):
            self.closed_notice(conv, turn, announce=False)
            self.say(conv, turn, self.guidance("emergency", category))

    def guidance(self, base: str, category: str | None) -> str:
        """The clinic's ``<base>_<category>`` text when it has one, else ``<base>``."""
        return self.text_or(guidance_key(category, base), base)

    def text_or(self, key: str, fallback: str) -> str:
        """The clinic's text ``key`` when it has one, else ``fallback``'s."""
        try:
            return self.text(key)
        except KeyError:
            return self.text(fallback)

    def closed_notice(
        self, conv: dict[str, Any], turn: Turn, *, announce: bool, reason: str | None = None
    ) -> str | None:
        """The hand-off line (``handoff_<reason>`` when the clinic has one, e.g. for a data
        request, else ``handoff``); when closed, honest about the next opening. Returns when
        to tell the staff (ISO instant of the next opening) or None for now."""
        if self.hours is None or self.hours.is_open(turn.now):
            if announce:
                self.say(conv, turn, self.text_or(f"handoff_{reason}", "handoff"))
            return None
        opening = self.hours.next_opening(turn.now)
        when = self.hours.describe_opening(opening, turn.now)
        self.say(conv, turn, self.text("out_of_hours"), proxima_abertura=when)
        return iso(opening)

    def close(self, conv: dict[str, Any], turn: Turn, why: str) -> None:
        conv["status"] = "closed"
        turn.event("closed", reason=why)
