"""The conversation engine: one turn through a LangGraph graph.

    load → guards → understand → safety → advance → respond → persist

Each node is a method below. The graph state is the conversation's small JSON-plain state
(script id and digest, FSM state, slots, counters, status), checkpointed by LangGraph's
SqliteSaver under the chat id (``thread_id``). The turn's working data (the text, replies,
events) travels in the run's context, never in the checkpoint, and the history goes to the
tables of :class:`clinicflow.storage.Store`. Only the newest checkpoint of a chat is kept, so
storage grows linearly with the conversation.

A conversation waiting for a human is a ``status`` the guards honour (record, stay silent)
rather than a LangGraph ``interrupt()``: every inbound message is a new run, and a paused
thread would need every message during the human's turn to be a resume command.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, TypedDict, cast

from clinicflow import brief as briefs
from clinicflow import history, lead
from clinicflow.clock import Clock, SystemClock, iso
from clinicflow.dialogue import ROUTING, Dialogue, Event, Turn, acts_on
from clinicflow.errors import ConversationError
from clinicflow.flow import Flow
from clinicflow.hours import BusinessHours
from clinicflow.model import Catalog, Script
from clinicflow.storage import Row, Store
from clinicflow.text import PhraseMatcher
from clinicflow.understanding import Understander, Understanding

if TYPE_CHECKING:
    from langgraph.runtime import Runtime
    from langgraph.types import Command

    from clinicflow.embeddings import Embedder
    from clinicflow.followup_service import FollowUpService, OnSend
    from clinicflow.llm import LLM


class ConvState(TypedDict, total=False):
    """The checkpointed state of one conversation: small and JSON-plain."""

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
    last_inbound_at: str
    last_outbound_at: str


def _state(conv: Mapping[str, Any]) -> ConvState:
    return cast(ConvState, {k: v for k, v in conv.items() if k in ConvState.__annotations__})


MAX_TEXT = 4000  # characters understood per message; the history keeps up to 20k


@dataclass(frozen=True)
class TurnResult:
    """What one turn produced: replies to send, events, and the conversation afterwards."""

    chat_id: str
    replies: tuple[str, ...]
    events: tuple[Event, ...]
    script_id: str | None
    state: str | None
    slots: dict[str, Any]
    status: str
    lead_status: str
    intent: str | None
    confidence: float
    source: str
    handoff: dict[str, Any] | None = None
    ms: float = 0.0
    llm_calls: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def event_types(self) -> list[str]:
        return [event.type for event in self.events]


class Engine:
    """Runs conversations over a catalog.

    Args:
        catalog: the loaded catalog (see :func:`clinicflow.loader.load_catalog`).
        data_dir: where the SQLite history and the LanceDB index live.
        embedder: sentence embedder; default the bundled USE multilingual model.
        llm: optional language model (None: local understanding only).
        clock: time source; default the system clock.
        progress: show a progress bar while the embedding index is (re)built.
        llm_budget_s: wall-clock seconds all LLM calls of one turn may take together.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        data_dir: str | Path = ".clinicflow",
        embedder: Embedder | None = None,
        llm: LLM | None = None,
        clock: Clock | None = None,
        progress: bool = False,
        llm_budget_s: float = 6.0,
    ) -> None:
        from clinicflow.embeddings import USEEmbedder
        from clinicflow.index import Index

        self.data_dir = Path(data_dir)
        self.clock: Clock = clock or SystemClock()
        self.llm = llm
        self.llm_budget_s = llm_budget_s
        self.store = Store(self.data_dir)
        self.embedder = embedder or USEEmbedder()
        self.lock = threading.RLock()  # one turn (or out-of-turn change) at a time
        self.follow_ups: FollowUpService | None = None
        self._scripts: dict[str, Script] = {}
        self._flows: dict[str, Flow] = {}
        self.index = Index.open(catalog, self.data_dir, self.embedder, progress=progress)
        self._install(catalog)
        self._graph = self._build_graph()

    @classmethod
    def from_catalog(
        cls, path: str | Path | None = None, *, data_dir: str | Path = ".clinicflow", **kwargs: Any
    ) -> Engine:
        """Load a catalog folder (None: the bundled one) and build an engine over it."""
        from clinicflow.loader import load_catalog

        return cls(load_catalog(path), data_dir=data_dir, **kwargs)

    # -- catalog and versions ---------------------------------------------------------------

    def _install(self, catalog: Catalog) -> None:
        self.catalog = catalog
        now = iso(self.clock.now())
        rows = []
        for script in catalog.scripts:
            if script.digest not in self._scripts:
                self._scripts[script.digest] = script
                self._flows[script.digest] = Flow(script)
            source = Path(script.path).read_text("utf-8") if Path(script.path).exists() else ""
            rows.append(
                Row(
                    "script_versions",
                    {
                        "digest": script.digest,
                        "script_id": script.id,
                        "version": script.version,
                        "path": script.path,
                        "source": source,
                        "loaded_at": now,
                    },
                )
            )
        self.store.write(rows)
        self.hours = BusinessHours(catalog.clinic.hours, self.clock)
        self.understander = Understander(catalog, self.index)
        self.dialogue = Dialogue(
            catalog,
            self._scripts,
            self._flows,
            answerer=self._answer if self.llm else None,
            hours=self.hours,
        )
        self._campaigns = PhraseMatcher(
            (c.id, pattern) for c in catalog.clinic.campaigns for pattern in c.patterns
        )

    def reload(self, path: str | Path | None = None) -> Catalog:
        """Load the catalog again; conversations in flight keep the version they started on.

        Raises ScriptError (and keeps the current catalog) when the new one has errors.
        """
        from clinicflow.index import Index
        from clinicflow.loader import load_catalog

        catalog = load_catalog(path if path is not None else self.catalog.root)
        with self.lock:
            self.index = Index.open(catalog, self.data_dir, self.embedder)
            self._install(catalog)
        return catalog

    def _restore_version(self, digest: str) -> Script | None:
        """A script version a conversation pinned, from memory or the stored source."""
        if digest in self._scripts:
            return self._scripts[digest]
        stored = self.store.script_source(digest)
        if not stored or not stored["source"]:
            return None
        from clinicflow.loader import load_script_text

        try:
            script = load_script_text(stored["source"], stored["path"])
        except Exception:  # an unreadable old version: the caller falls back to the current one
            return None
        self._scripts[digest] = script
        self._flows[digest] = Flow(script)
        return script

    # -- the graph --------------------------------------------------------------------------

    def _build_graph(self) -> Any:
        from langgraph.checkpoint.sqlite import SqliteSaver
        from langgraph.graph import END, START, StateGraph

        from clinicflow.storage import connect

        self._saver_conn = connect(self.store.path)
        self._saver = SqliteSaver(self._saver_conn)
        graph: Any = StateGraph(ConvState, context_schema=Turn)
        graph.add_node("load", self._node_load)
        graph.add_node("guards", self._node_guards, destinations=("understand", "persist"))
        graph.add_node("understand", self._node_understand)
        graph.add_node("safety", self._node_safety, destinations=("advance", "respond"))
        graph.add_node("advance", self._node_advance)
        graph.add_node("respond", self._node_respond)
        graph.add_node("persist", self._node_persist)
        graph.add_edge(START, "load")
        graph.add_edge("load", "guards")
        graph.add_edge("understand", "safety")
        graph.add_edge("advance", "respond")
        graph.add_edge("respond", "persist")
        graph.add_edge("persist", END)
        return graph.compile(checkpointer=self._saver)

    # -- public API -------------------------------------------------------------------------

    def handle(
        self,
        chat_id: str,
        text: str | None,
        *,
        message_id: str | None = None,
        push_name: str | None = None,
        referral: Mapping[str, Any] | None = None,
        kind: str = "text",
    ) -> TurnResult:
        """Process one patient message and return what to reply.

        Never raises for bad input: empty, emoji-only or huge texts get a sensible reply.
        """
        if not isinstance(chat_id, str) or not chat_id.strip():
            raise ConversationError("a chat id is required")
        text = text if isinstance(text, str) else ""
        turn = Turn(
            chat_id=chat_id,
            text=text,
            now=self.clock.now(),
            meta={
                "message_id": message_id,
                "push_name": push_name,
                "referral": dict(referral) if referral else None,
                "kind": kind,
            },
        )
        started = turn.started = perf_counter()
        if self.follow_ups is not None:
            self.follow_ups.cancel(chat_id)  # she wrote: whatever was planned is moot
        with self.lock:
            self._graph.invoke({}, config=self._config(chat_id), context=turn, durability="exit")
            self._prune(chat_id)
        self._plan_follow_up(turn)
        return self.result_of(turn, (perf_counter() - started) * 1000)

    def _plan_follow_up(self, turn: Turn) -> None:
        if self.follow_ups is not None and turn.replies and turn.conv.get("status") == "bot":
            self.follow_ups.after_bot_message(turn.chat_id, turn.conv, turn.now)

    def enable_follow_ups(self, on_send: OnSend, *, autorun: bool | None = None) -> FollowUpService:
        """Start sending follow-ups to patients who went quiet (see clinicflow.followup_service).

        Args:
            on_send: receives each follow-up as a TurnResult (``extra["kind"] == "follow_up"``).
            autorun: fire in real time (default: only with the system clock; with a
                ManualClock, ``engine.follow_ups.scheduler.advance_to(...)`` fires them).
        """
        from clinicflow.followup_service import FollowUpService

        if self.follow_ups is None:
            self.follow_ups = FollowUpService(self, on_send, autorun=autorun)
        return self.follow_ups

    def record_event(self, chat_id: str, type_: str, **data: Any) -> None:
        """Store one event of a conversation outside a turn."""
        conv = self.state_of(chat_id) or {}
        where = {"script_id": conv.get("script_id") or "", "state": conv.get("state") or ""}
        self.store.write([history.event_row(chat_id, type_, data, where, iso(self.clock.now()))])

    async def ahandle(self, chat_id: str, text: str | None, **meta: Any) -> TurnResult:
        """:meth:`handle` for asyncio code: runs the turn in a worker thread."""
        return await asyncio.to_thread(self.handle, chat_id, text, **meta)

    def _config(self, chat_id: str) -> Any:
        return {"configurable": {"thread_id": chat_id}}

    def _prune(self, chat_id: str) -> None:
        """Keep only the newest checkpoint of a chat (history lives in the tables)."""
        with self._saver_conn:
            self._saver_conn.execute(
                "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id <> "
                "(SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ?)",
                (chat_id, chat_id),
            )
            self._saver_conn.execute(
                "DELETE FROM writes WHERE thread_id = ? AND checkpoint_id <> "
                "(SELECT MAX(checkpoint_id) FROM checkpoints WHERE thread_id = ?)",
                (chat_id, chat_id),
            )

    def result_of(
        self, turn: Turn, ms: float = 0.0, extra: dict[str, Any] | None = None
    ) -> TurnResult:
        """The :class:`TurnResult` of a turn or of an out-of-turn message."""
        conv = turn.conv
        u = turn.understanding
        return TurnResult(
            chat_id=turn.chat_id,
            replies=tuple(turn.replies),
            events=tuple(turn.events),
            script_id=conv.get("script_id"),
            state=conv.get("state"),
            slots=dict(conv.get("slots", {})),
            status=str(conv.get("status", "bot")),
            lead_status=str(conv.get("lead_status", "new")),
            intent=u.intent if u else None,
            confidence=u.confidence if u else 0.0,
            source=u.source if u else "fallback",
            handoff=turn.handoff,
            ms=ms,
            llm_calls=len(turn.llm_calls),
            extra=dict(extra or {}),
        )

    def state_of(self, chat_id: str) -> dict[str, Any] | None:
        """The checkpointed state of a conversation, or None if it never wrote."""
        snapshot = self._graph.get_state(self._config(chat_id))
        return dict(snapshot.values) if snapshot and snapshot.values else None

    def write_change(self, chat_id: str, turn: Turn) -> None:
        """Write an out-of-turn change (hand-back, close, scheduled) to checkpoint and tables."""
        with self.lock:
            self._graph.update_state(self._config(chat_id), _state(turn.conv), as_node="persist")
            self._prune(chat_id)
            script = self.dialogue.script_of(turn.conv)
            rows = history.turn_rows(turn.conv, turn, script, None, inbound=False)
            self.store.write(rows)

    def _existing(self, chat_id: str) -> Turn:
        conv = self.state_of(chat_id)
        if conv is None:
            raise ConversationError(f"no conversation with chat id {chat_id!r}")
        return Turn(chat_id=chat_id, text="", now=self.clock.now(), conv=conv)

    def _resolve_handoffs(self, chat_id: str, now: str) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE handoffs SET status = 'resolved', resolved_at = ? "
                "WHERE chat_id = ? AND status = 'open'",
                (now, chat_id),
            )

    def hand_back(self, chat_id: str) -> TurnResult:
        """The secretary returns the chat to the bot: it resumes exactly where it paused.

        A conversation on an older script version moves to the current version here when
        the step it paused on still exists there.
        """
        turn = self._existing(chat_id)
        conv = turn.conv
        conv["status"] = "bot"
        conv["repairs"] = 0
        conv["urgent"] = False
        resume = conv.pop("resume_state", None) or conv.get("state")
        current = self.catalog.script(conv.get("script_id") or "")
        if (
            current is not None
            and current.digest != conv.get("digest")
            and current.has_state(resume or "")
        ):
            conv.update(digest=current.digest, version=current.version)
            turn.event("script_upgraded", version=current.version)
        script = self.dialogue.script_of(conv)
        turn.event("handed_back")
        self.dialogue.say(conv, turn, self.dialogue.text("handed_back"))
        if script is not None and resume and script.has_state(resume):
            conv["state"] = resume
            if script.state(resume).is_terminal:
                conv["state"] = script.start
            self.dialogue.reprompt(conv, turn)
        else:
            self.dialogue.routing_menu(conv, turn, intro=False)
        self._resolve_handoffs(chat_id, iso(turn.now))
        conv["last_outbound_at"] = iso(turn.now)
        self.write_change(chat_id, turn)
        self._plan_follow_up(turn)
        return self.result_of(turn, 0.0)

    def start(self, chat_id: str, script_id: str) -> TurnResult:
        """Open a conversation directly on a script (``clinicflow chat --script``)."""
        script = self.catalog.script(script_id)
        if script is None:
            raise ConversationError(f"no script {script_id!r} in the catalog")
        turn = Turn(chat_id=chat_id, text="", now=self.clock.now())
        turn.conv = self.state_of(chat_id) or {}
        if not turn.conv.get("status") or turn.conv.get("status") == "closed":
            self._fresh(turn.conv, turn)
        self.dialogue.start_script(turn.conv, turn, script)
        turn.conv["last_outbound_at"] = iso(turn.now)
        self.write_change(chat_id, turn)
        self._plan_follow_up(turn)
        return self.result_of(turn, 0.0)

    def take_over(self, chat_id: str) -> None:
        """A person answers from the clinic's phone: the bot goes silent in this chat.

        Works for a chat the bot never saw too (staff wrote first): it starts in ``human``.
        """
        if self.follow_ups is not None:
            self.follow_ups.cancel(chat_id)
        turn = Turn(chat_id=chat_id, text="", now=self.clock.now())
        turn.conv = self.state_of(chat_id) or {}
        if not turn.conv.get("status"):
            self._fresh(turn.conv, turn)
            turn.conv["origin"] = "staff"
        if turn.conv.get("status") != "human":
            turn.conv["status"] = "human"
            turn.event("human_took_over")
            self.write_change(chat_id, turn)

    def close(self, chat_id: str, reason: str = "staff") -> None:
        """Close a conversation (the staff finished it)."""
        if self.follow_ups is not None:
            self.follow_ups.cancel(chat_id)
        turn = self._existing(chat_id)
        turn.conv["status"] = "closed"
        turn.event("closed", reason=reason)
        self._resolve_handoffs(chat_id, iso(turn.now))
        self.write_change(chat_id, turn)

    def mark_scheduled(self, chat_id: str) -> None:
        """Staff booked the patient: the lead becomes ``scheduled``."""
        if self.follow_ups is not None:
            self.follow_ups.cancel(chat_id)
        turn = self._existing(chat_id)
        turn.conv["lead_status"] = "scheduled"
        turn.conv.setdefault("lead_times", {})["scheduled"] = iso(turn.now)
        turn.event("scheduled")
        self.write_change(chat_id, turn)

    def classify(self, text: str) -> Understanding:
        """The intent of a message out of any conversation (``clinicflow classify``)."""
        u = self.understander.understand(text if isinstance(text, str) else "")
        if u.intent is None and u.red_flags:
            from dataclasses import replace

            u = replace(u, intent="urgent", confidence=1.0, source="rule")
        return u

    def close_resources(self) -> None:
        """Stop the follow-ups and close the database connections."""
        if self.follow_ups is not None:
            self.follow_ups.close()
            self.follow_ups = None
        self._saver_conn.close()
        self.store.close()

    # -- nodes ------------------------------------------------------------------------------

    def _node_load(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        conv: dict[str, Any] = dict(state)
        now = iso(turn.now)
        if not conv.get("status"):
            self._fresh(conv, turn)
        conv["turns"] = int(conv.get("turns", 0)) + 1
        conv["last_inbound_at"] = now
        if turn.meta.get("push_name") and not conv.get("push_name"):
            conv["push_name"] = str(turn.meta["push_name"])[:80]
        digest = conv.get("digest")
        if digest and self._restore_version(digest) is None:
            # The pinned version is gone for good: restart on the current one, say so in events.
            turn.event("script_version_lost", script=conv.get("script_id"))
            conv.update(script_id=None, digest=None, state=None)
        turn.conv = conv
        return _state(conv)

    def _fresh(self, conv: dict[str, Any], turn: Turn) -> None:
        conv.update(
            status="bot",
            lead_status="new",
            score=0,
            slots={},
            attempts={},
            repairs=0,
            turns=0,
            follow_ups_sent=0,
            opted_out=False,
            started_at=iso(turn.now),
            origin=self._origin(turn),
        )
        turn.event("conversation_started", origin=conv["origin"])

    def _origin(self, turn: Turn) -> str:
        referral = turn.meta.get("referral")
        if referral:
            wanted = str(referral.get("source_id") or referral.get("title") or "")
            for campaign in self.catalog.clinic.campaigns:
                if campaign.id == wanted or campaign.name == wanted:
                    return campaign.id
            found = self._campaigns.keys(str(referral.get("title") or ""))
            return found[0] if found else "ad_referral"
        found = self._campaigns.keys(turn.text)
        return found[0] if found else "organic"

    def _node_guards(self, state: ConvState, runtime: Runtime[Turn]) -> Command[Any]:
        from langgraph.types import Command

        turn = runtime.context
        conv = turn.conv
        status = conv.get("status")
        if status in ("waiting_human", "human"):
            turn.silent = True
            flags = self.understander.red_flags(turn.text, self.dialogue.script_of(conv))
            turn.event("message_while_" + status, red_flags=list(flags))
            if flags and not conv.get("urgent"):
                # Safety first even while a person has the chat: she is told where to go now,
                # once, and the staff get an urgent brief.
                conv["urgent"] = True
                self.dialogue.urgent_notice(conv, turn)
                turn.handoff = {"reason": "urgent", "urgent": True, "red_flags": list(flags)}
                turn.event("handoff_escalated", red_flags=list(flags))
            return Command(update=_state(conv), goto="persist")
        if conv.get("opted_out"):
            mentions = self.understander.script_mentions(turn.text)
            wants = set(self.understander.rule_intents(turn.text)) & {
                "schedule",
                "human",
                "ask_price",
                "ask_info",
                "ask_location",
                "ask_hours",
                "ask_insurance",
            }
            if not (mentions or wants):
                turn.silent = True
                turn.event("message_after_opt_out")
                return Command(update=_state(conv), goto="persist")
            conv["opted_out"] = False
            turn.event("opted_in")
        if status == "closed":
            conv.update(status="bot", script_id=None, digest=None, state=None, attempts={})
            conv["repairs"] = 0
            turn.event("reopened")
        return Command(update=_state(conv), goto="understand")

    def _node_understand(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        conv = turn.conv
        script = self.dialogue.script_of(conv)
        expects_choice = conv.get("state") == ROUTING
        expects_yes_no = False
        if script is not None and conv.get("state") not in (None, ROUTING):
            current = script.state(conv["state"])
            slot = script.slot(current.collect) if current.collect else None
            expects_choice = current.menu is not None or (
                slot is not None and slot.type == "choice"
            )
            expects_yes_no = slot is not None and slot.type == "yes_no"
        text = turn.text[:MAX_TEXT]
        u = self.understander.understand(
            text, script=script, expects_choice=expects_choice, expects_yes_no=expects_yes_no
        )
        if self.llm is not None and not u.confident:
            u = self._ask_llm(conv, turn, u)
        turn.understanding = u
        turn.event("message_in", intent=u.intent or "", source=u.source)
        return _state(conv)

    def _ask_llm(self, conv: dict[str, Any], turn: Turn, local: Understanding) -> Understanding:
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
            conv=conv,
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
        left = self.llm_budget_s - (perf_counter() - turn.started)
        return left if left >= 0.3 else None

    def _answer(self, conv: dict[str, Any], turn: Turn, script: Script | None) -> str | None:
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

    def _summary(
        self, conv: dict[str, Any], turn: Turn, history: list[dict[str, Any]]
    ) -> str | None:
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
            slots=conv.get("slots", {}),
            reason=turn.handoff["reason"],
            history=history,
        )
        if call is not None:
            turn.llm_calls.append(call)
        return summary

    def _node_safety(self, state: ConvState, runtime: Runtime[Turn]) -> Command[Any]:
        from langgraph.types import Command

        turn = runtime.context
        conv = turn.conv
        u = turn.understanding
        assert u is not None
        d = self.dialogue
        kind = turn.meta.get("kind") or "text"
        if kind != "text" and not u.red_flags and not turn.text.strip():
            # A photo, document, location or untranscribed audio: acknowledge, keep the step.
            turn.event("media_received", kind=kind)
            d.say(conv, turn, d.text("media_received"))
            if conv.get("state") not in (None, ROUTING):
                d.reprompt(conv, turn)
            return Command(update=_state(conv), goto="respond")
        if u.red_flags or (u.intent == "urgent" and acts_on(u)):
            turn.event("red_flag", flags=list(u.red_flags))
            d.handoff(conv, turn, "urgent", urgent=True)
            return Command(update=_state(conv), goto="respond")
        if u.intent == "opt_out" and acts_on(u):
            d.say(conv, turn, d.text("opt_out"))
            conv["opted_out"] = True
            conv["lead_status"] = "lost"
            conv["lost_reason"] = "opt_out"
            turn.event("opted_out")
            d.close(conv, turn, "opt_out")
            return Command(update=_state(conv), goto="respond")
        weak = u.source == "embedding" and not u.sure
        routing_hint = conv.get("state") in (None, ROUTING) and bool(u.scripts or u.similar_script)
        if u.intent in ("bot_check", "medical_advice") and not (weak or routing_hint):
            turn.event("safety_reply", kind=u.intent)
            d.say(conv, turn, d.text(u.intent))
            if conv.get("state") is None:
                d.routing_menu(conv, turn, intro=False)
            else:
                d.reprompt(conv, turn)
            return Command(update=_state(conv), goto="respond")
        return Command(update=_state(conv), goto="advance")

    def _node_advance(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        self.dialogue.step(turn.conv, turn)
        return _state(turn.conv)

    def _node_respond(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        conv = turn.conv
        if not turn.replies and not turn.silent and conv.get("status") == "bot":
            self.dialogue.say(conv, turn, self.dialogue.text("not_understood"))
        script = self.dialogue.script_of(conv)
        scoring = lead.effective(
            self.catalog.clinic.lead_scoring, script.lead_scoring if script else None
        )
        conv["score"] = int(conv.get("score", 0)) + lead.score(
            ((e.type, e.data) for e in turn.events), scoring
        )
        if not conv.get("opted_out"):
            conv["lead_status"] = lead.advance(
                conv.get("lead_status", "new"),
                turns=int(conv["turns"]),
                score_now=int(conv["score"]),
                scoring=scoring,
                handed_off=conv.get("status") == "waiting_human",
            )
        times = conv.setdefault("lead_times", {})
        times.setdefault(conv["lead_status"], iso(turn.now))
        if turn.replies:
            conv["last_outbound_at"] = iso(turn.now)
        return _state(conv)

    def _node_persist(self, state: ConvState, runtime: Runtime[Turn]) -> ConvState:
        turn = runtime.context
        conv = turn.conv
        # First the brief: composing it may call the LLM, and that call is recorded too.
        handoff = self._handoff_row(conv, turn, iso(turn.now)) if turn.handoff else None
        script = self.dialogue.script_of(conv)
        self.store.write(history.turn_rows(conv, turn, script, handoff))
        return _state(conv)

    # -- rows -------------------------------------------------------------------------------

    def _handoff_row(self, conv: dict[str, Any], turn: Turn, now: str) -> dict[str, Any]:
        assert turn.handoff is not None
        script = self.dialogue.script_of(conv)
        history = self.store.messages(turn.chat_id, limit=6)
        history.append({"direction": "in", "text": turn.text})
        history += [{"direction": "out", "text": reply} for reply in turn.replies]
        brief = briefs.compose(
            chat_id=turn.chat_id,
            clinic=self.catalog.clinic,
            script=script,
            slots=conv.get("slots", {}),
            reason=turn.handoff["reason"],
            urgent=bool(turn.handoff["urgent"]),
            red_flags=turn.handoff["red_flags"],
            messages=history,
            push_name=conv.get("push_name"),
            summary=self._summary(conv, turn, history),
        )
        turn.handoff["brief"] = brief.text()
        return {
            "chat_id": turn.chat_id,
            "reason": turn.handoff["reason"],
            "urgent": int(bool(turn.handoff["urgent"])),
            "red_flags": json.dumps(turn.handoff["red_flags"]),
            "brief": json.dumps(brief.as_dict(), ensure_ascii=False),
            "status": "open",
            "script_id": conv.get("script_id") or "",
            "state": conv.get("state") or "",
            "at": now,
        }
