"""The steps of one turn, as the nodes of the engine's LangGraph graph.

    load → guards → understand → safety → advance → respond → persist

:class:`Steps` holds one method per node; :func:`build_graph` wires them into a
``StateGraph`` checkpointed by SqliteSaver under the chat id (``thread_id``). The graph state
is :class:`ConvState`, the conversation's small JSON-plain state; the turn's working data (the
text, replies, events) travels in the run's context (:class:`~clinicflow.dialogue.Turn`),
never in the checkpoint, and the history goes to the tables of
:class:`~clinicflow.storage.Store`.

A conversation waiting for a human is a ``status`` the guards honour (record, stay silent)
rather than a LangGraph ``interrupt()``: every inbound message is a new run, and a paused
thread would need every message during the human's turn to be a resume command.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import replace
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypedDict, cast

from clinicflow import brief as briefs
from clinicflow import history, lead
from clinicflow.clock import iso
from clinicflow.dialogue import ROUTING, Conversation, Dialogue, Handoff, Part, Turn, acts_on
from clinicflow.dialogue.clauses import is_question, split
from clinicflow.metrics_campaigns import campaign_for
from clinicflow.model import Catalog, Script
from clinicflow.storage import Store
from clinicflow.understanding import Understander, Understanding

if TYPE_CHECKING:
    from langgraph.runtime import Runtime
    from langgraph.types import Command

    from clinicflow.engine import Engine
    from clinicflow.llm import LLM

MAX_TEXT = 4000  # characters understood per message; the history keeps up to 20k
# After an opt-out, the bot answers again only when she asks for something.
_ASKS_AGAIN = frozenset(
    {"schedule", "human", "ask_price", "ask_info", "ask_location", "ask_hours", "ask_insurance"}
)


class ConvState(TypedDict, total=False):
    """The checkpointed state of one conversation: small and JSON-plain
    (:meth:`Conversation.to_checkpoint`; one LangGraph channel per key)."""

    script_id: str | None
    digest: str | None
    version: str | None
    state: str | None
    resume_state: str | None
    slots: dict[str, Any]
    attempts: dict[str, int]
    repairs: int
    status: str
    lead_status: str
    lead_times: dict[str, str]
    lost_reason: str | None
    score: int
    turns: int
    follow_ups_sent: int
    opted_out: bool
    handoff_reason: str | None
    urgent: bool
    origin: str
    push_name: str
    started_at: str
    last_inbound_at: str | None
    last_outbound_at: str | None
    introduced: bool
    when: str | None
    period: str | None
    questions: list[str]
    notes: list[str]
    told: list[str]
    last_filled: str | None
    booking: bool


def _state(conv: Conversation) -> ConvState:
    return cast(ConvState, conv.to_checkpoint())


def build_graph(steps: Steps, saver: Any) -> Any:
    """The compiled graph of one turn (one node per step).

    The steps work on the turn's :class:`Conversation` (``runtime.context.conv``) and write
    nothing to the graph's channels until ``persist``, which writes the whole state once: one
    set of channel writes per turn instead of one per step (LangGraph applies and versions
    every write of every superstep)."""
    from langgraph.graph import END, START, StateGraph

    graph: Any = StateGraph(ConvState, context_schema=Turn)
    graph.add_node("load", steps.load)
    graph.add_node("guards", steps.guards, destinations=("understand", "persist"))
    graph.add_node("understand", steps.understand)
    graph.add_node("safety", steps.safety, destinations=("advance", "respond"))
    graph.add_node("advance", steps.advance)
    graph.add_node("respond", steps.respond)
    graph.add_node("persist", steps.persist)
    graph.add_edge(START, "load")
    graph.add_edge("load", "guards")
    graph.add_edge("understand", "safety")
    graph.add_edge("advance", "respond")
    graph.add_edge("respond", "persist")
    graph.add_edge("persist", END)
    return graph.compile(checkpointer=saver)


class Steps:
    """The nodes of a turn over one engine's collaborators (catalog, dialogue, store, LLM)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def catalog(self) -> Catalog:
        return self.engine.catalog

    @property
    def dialogue(self) -> Dialogue:
        return self.engine.dialogue

    @property
    def understander(self) -> Understander:
        return self.engine.understander

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def llm(self) -> LLM | None:
        return self.engine.llm

    def load(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        conv = Conversation.from_checkpoint(state)
        if conv.is_new:
            self.fresh(conv, turn)
        conv.turns += 1
        conv.last_inbound_at = iso(turn.now)
        if turn.meta.get("push_name") and not conv.push_name:
            conv.push_name = str(turn.meta["push_name"])[:80]
        if conv.digest and self.engine.restore_version(conv.digest) is None:
            # The pinned version is gone for good: restart on the current one, say so in events.
            turn.event("script_version_lost", script=conv.script_id)
            conv.script_id = conv.digest = conv.state = None
        turn.conv = conv
        return {}

    def fresh(self, conv: Conversation, turn: Turn) -> None:
        """A new conversation (the checkpoint had none, or a terminal one was restarted)."""
        new = Conversation(status="bot", started_at=iso(turn.now), origin=self._origin(turn))
        conv.__dict__.update(new.__dict__)
        turn.event("conversation_started", origin=conv.origin)

    def _origin(self, turn: Turn) -> str:
        return campaign_for(self.catalog.clinic.campaigns, turn.meta.get("referral"), turn.text)

    def guards(self, state: ConvState, runtime: Runtime[Turn]) -> Command[Any]:
        from langgraph.types import Command

        turn = runtime.context
        conv = turn.conv
        status = conv.status
        if status in ("waiting_human", "human"):
            turn.silent = True
            verdict = self.understander.assess(turn.text[:MAX_TEXT])
            flags = verdict.red_flags
            turn.event("message_while_" + status, red_flags=list(flags))
            if verdict.urgent and not conv.urgent:
                # Safety first even while a person has the chat: she is told where to go now,
                # once, and the staff get an urgent brief.
                conv.urgent = True
                self.dialogue.urgent_notice(conv, turn, verdict.category)
                turn.handoff = Handoff(
                    reason="urgent",
                    urgent=True,
                    red_flags=flags,
                    category=verdict.category,
                    sure=verdict.sure,
                )
                turn.event("handoff_escalated", red_flags=list(flags), category=verdict.category)
            elif self.dialogue.desk.answers_while_waiting(conv, turn):
                # Nobody at the clinic yet: her factual questions get the FAQ's answers (the
                # out_of_hours text says so); the script does not move. A person writing
                # (take-over) ends this at once.
                turn.silent = False
                return Command(goto="understand")
            return Command(goto="persist")
        if conv.opted_out:
            mentions = self.understander.script_mentions(turn.text)
            intent, confidence = self.understander.intent_of(turn.text[:MAX_TEXT])
            wants = (
                intent in _ASKS_AGAIN
                and confidence >= self.catalog.clinic.understanding.intent_sure
            )
            if not (mentions or wants):
                turn.silent = True
                turn.event("message_after_opt_out")
                return Command(goto="persist")
            conv.opted_out = False
            turn.event("opted_in")
        if status == "closed":
            conv.status = "bot"
            conv.script_id = conv.digest = conv.state = None
            conv.attempts, conv.repairs = {}, 0
            turn.event("reopened")
        return Command(goto="understand")

    def understand(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        conv = turn.conv
        script = self.dialogue.script_of(conv)
        expects_choice = conv.state == ROUTING
        expects_yes_no = False
        if script is not None and conv.state is not None and conv.in_script:
            current = script.state(conv.state)
            slot = script.slot(current.collect) if current.collect else None
            expects_choice = current.menu is not None or (
                slot is not None and slot.type == "choice"
            )
            expects_yes_no = slot is not None and slot.type == "yes_no"
        text = turn.text[:MAX_TEXT]
        u = self.understander.understand(
            text, script=script, expects_choice=expects_choice, expects_yes_no=expects_yes_no
        )
        if self.llm is not None and (not u.confident or u.second_look):
            u = self._ask_llm(conv, turn, u)
        turn.understanding = u
        turn.parts = self._parts(text, script, u)
        turn.event("message_in", intent=u.intent or "", source=u.source)
        return {}

    def _parts(self, text: str, script: Script | None, whole: Understanding) -> tuple[Part, ...]:
        """The clauses of a message that answers and asks, or asks several things, each
        understood on its own (empty: one clause, read as a whole). Safety stays with the
        whole message."""
        if whole.urgent or whole.source in ("choice", "rule"):
            return ()
        pieces = split(text)
        if len(pieces) < 2 or not any(is_question(p) for p in pieces):
            return ()
        return tuple(
            Part(p, self.understander.understand(p, script=script), is_question(p))
            for p in pieces[:6]
        )

    def _ask_llm(self, conv: Conversation, turn: Turn, local: Understanding) -> Understanding:
        """Gemini's reading of the message when the local cascade is not sure."""
        from clinicflow.gemini import understand_with_llm

        assert self.llm is not None
        budget = self._llm_budget(turn)
        if budget is None:
            return local
        result, call = understand_with_llm(
            self.llm,
            budget_s=budget,
            catalog=self.catalog,
            script=self.dialogue.script_of(conv),
            conv=conv.to_checkpoint(),
            history=self.store.messages(turn.chat_id, limit=6),
            text=turn.text[:MAX_TEXT],
            local=local,
            today=self.dialogue.today(turn),
        )
        if call is not None:
            turn.llm_calls.append(call)
        return result

    def _llm_budget(self, turn: Turn) -> float | None:
        """Seconds left for LLM calls in this turn; None once a call failed or time is short.

        One budget covers the whole turn (understanding, answer, summary), so a slow or
        failing Gemini delays a reply by at most ``llm_budget_s``.
        """
        if any(call.outcome != "ok" for call in turn.llm_calls):
            return None
        left = self.engine.llm_budget_s - (perf_counter() - turn.started)
        return left if left >= 0.3 else None

    def answer(self, conv: Conversation, turn: Turn, script: Script | None) -> str | None:
        """Gemini's grounded answer, checked; None when it cannot answer safely."""
        from clinicflow.gemini import answer_with_llm

        assert self.llm is not None
        budget = self._llm_budget(turn)
        if budget is None:
            return None
        text, call = answer_with_llm(
            self.llm,
            budget_s=budget,
            catalog=self.catalog,
            script=script,
            question=turn.text[:MAX_TEXT],
            history=self.store.messages(turn.chat_id, limit=6),
        )
        if call is not None:
            turn.llm_calls.append(call)
        return text

    def _summary(self, conv: Conversation, turn: Turn, history: list[dict[str, Any]]) -> str | None:
        """A generated, checked 2–3 line summary for the brief (None: compose locally)."""
        if self.llm is None or turn.handoff is None:
            return None
        from clinicflow.gemini import summarize_with_llm

        budget = self._llm_budget(turn)
        if budget is None:
            return None
        summary, call = summarize_with_llm(
            self.llm,
            budget_s=budget,
            catalog=self.catalog,
            script=self.dialogue.script_of(conv),
            slots=conv.slots,
            reason=turn.handoff.reason,
            history=history,
        )
        if call is not None:
            turn.llm_calls.append(call)
        return summary

    def safety(self, state: ConvState, runtime: Runtime[Turn]) -> Command[Any]:
        from langgraph.types import Command

        turn = runtime.context
        conv = turn.conv
        u = turn.understanding
        assert u is not None
        d = self.dialogue
        kind = turn.meta.get("kind") or "text"
        if conv.status == "waiting_human":
            # Out of hours, waiting for a person (see guards): an emergency was already
            # handled there; the FAQ answers her questions, nothing else moves.
            self.dialogue.answer_waiting(conv, turn)
            return Command(goto="respond")
        if kind != "text" and not u.urgent and not turn.text.strip():
            # A photo, document, location or untranscribed audio: acknowledge, keep the step.
            turn.event("media_received", kind=kind)
            d.say(conv, turn, _media_ack(d, kind))
            if kind in ("voice", "audio"):
                # Nobody knows what she said (an emergency, a booking...): a person listens.
                d.handoff(conv, turn, "voice_note", announce=False)
            elif conv.in_script:
                d.reprompt(conv, turn)
            return Command(goto="respond")
        if u.urgent:
            turn.event(
                "red_flag",
                flags=list(u.red_flags),
                category=u.safety.category,
                sure=u.safety.sure,
                source=u.source,
            )
            d.handoff(conv, turn, "urgent", urgent=True, category=u.safety.category)
            return Command(goto="respond")
        if u.intent == "opt_out" and acts_on(u):
            d.say(conv, turn, d.text("opt_out"))
            conv.opted_out = True
            conv.lead_status = "lost"
            conv.lost_reason = "opt_out"
            turn.event("opted_out")
            d.close(conv, turn, "opt_out")
            return Command(goto="respond")
        routing_hint = conv.state in (None, ROUTING) and bool(u.scripts or u.similar_script)
        # A dose or medicine question (a rule) gets the fixed text even when it names a
        # procedure ("qual a dose de progesterona na menopausa?").
        dosing = u.intent == "medical_advice" and u.source == "rule"
        if u.intent in ("bot_check", "medical_advice") and (
            dosing or (acts_on(u) and not routing_hint)
        ):
            turn.event("safety_reply", kind=u.intent)
            d.say(conv, turn, d.text(u.intent))
            if conv.state is None:
                d.routing_menu(conv, turn, intro=False)
            else:
                d.reprompt(conv, turn)
            return Command(goto="respond")
        return Command(goto="advance")

    def advance(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        self.dialogue.step(turn.conv, turn)
        return {}

    def respond(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        conv = turn.conv
        if not turn.replies and not turn.silent and conv.status == "bot":
            self.dialogue.say(conv, turn, self.dialogue.text("not_understood"))
        self._privacy_notice(conv, turn)
        script = self.dialogue.script_of(conv)
        scoring = lead.effective(
            self.catalog.clinic.lead_scoring, script.lead_scoring if script else None
        )
        conv.score += lead.score(((e.type, e.data) for e in turn.events), scoring)
        if not conv.opted_out:
            conv.lead_status = lead.advance(
                conv.lead_status,
                turns=conv.turns,
                score_now=conv.score,
                scoring=scoring,
                handed_off=conv.status == "waiting_human",
            )
        conv.lead_times.setdefault(conv.lead_status, iso(turn.now))
        if turn.replies:
            conv.last_outbound_at = iso(turn.now)
        return {}

    def _privacy_notice(self, conv: Conversation, turn: Turn) -> None:
        """The clinic's privacy notice (LGPD) after the bot's first replies to a new
        conversation — not over an emergency's guidance, nor after an opt-out."""
        notice = self.catalog.clinic.privacy_notice
        first = any(event.type == "conversation_started" for event in turn.events)
        urgent = turn.handoff is not None and turn.handoff.urgent
        if notice and first and turn.replies and not urgent and not conv.opted_out:
            self.dialogue.say(conv, turn, notice)
            turn.event("privacy_notice")

    def persist(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        conv = turn.conv
        # First the brief: composing it may call the LLM, and that call is recorded too.
        handoff = self._handoff_row(conv, turn, iso(turn.now)) if turn.handoff else None
        script = self.dialogue.script_of(conv)
        # Committed with the turn's checkpoint, in one transaction (Engine.handle → flush).
        self.engine.saver.stage(turn.chat_id, history.turn_rows(conv, turn, script, handoff))
        return _state(conv)

    # -- rows -------------------------------------------------------------------------------

    def _handoff_row(self, conv: Conversation, turn: Turn, now: str) -> dict[str, Any]:
        handoff = turn.handoff
        assert handoff is not None
        script = self.dialogue.script_of(conv)
        history = self.store.messages(turn.chat_id, limit=6)
        history.append({"direction": "in", "text": turn.text})
        history += [{"direction": "out", "text": reply} for reply in turn.replies]
        brief = briefs.compose(
            chat_id=turn.chat_id,
            clinic=self.catalog.clinic,
            script=script,
            slots=conv.slots,
            reason=handoff.reason,
            urgent=handoff.urgent,
            red_flags=handoff.red_flags,
            messages=history,
            push_name=conv.push_name,
            summary=self._summary(conv, turn, history),
            phone=turn.meta.get("phone"),
            asked=briefs.Asked.of(conv, script),
            category=handoff.category,
        )
        turn.handoff = replace(handoff, brief=brief)
        return {
            "chat_id": turn.chat_id,
            "reason": handoff.reason,
            "urgent": int(handoff.urgent),
            "red_flags": json.dumps(list(handoff.red_flags)),
            "brief": json.dumps(brief.as_dict(), ensure_ascii=False),
            "status": "open",
            "script_id": conv.script_id or "",
            "state": conv.state or "",
            "at": now,
        }


def _media_ack(d: Dialogue, kind: str) -> str:
    """The acknowledgement of a message the bot cannot read: an audio is called an audio."""
    if kind in ("voice", "audio"):
        with contextlib.suppress(KeyError):
            return d.text("audio_received")
    return d.text("media_received")
