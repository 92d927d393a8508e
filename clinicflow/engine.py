"""The conversation engine: the public API over one catalog and one data directory.

:class:`Engine` takes a patient message (:meth:`Engine.handle`) through the LangGraph graph
of :mod:`clinicflow.steps` and returns a :class:`TurnResult`; it also carries the staff's
out-of-turn operations (hand-back, take-over, close, booked), hot reload and follow-ups.
Only the newest checkpoint of a chat is kept, so storage grows linearly with the conversation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from functools import wraps
from pathlib import Path
from time import perf_counter
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

from clinicflow import history
from clinicflow.chatlocks import ChatLocks
from clinicflow.clock import Clock, SystemClock, iso
from clinicflow.datadir import build_lock
from clinicflow.dialogue import Conversation, Dialogue, Event, Handoff, Turn
from clinicflow.errors import ConversationError
from clinicflow.flow import Flow
from clinicflow.hours import BusinessHours
from clinicflow.model import FAQ, Catalog, Script
from clinicflow.steps import MAX_TEXT, Steps, _state, build_graph
from clinicflow.storage import Row, Store
from clinicflow.text import PhraseMatcher, encodable
from clinicflow.understanding import Understander, Understanding

if TYPE_CHECKING:
    from clinicflow.embeddings import Embedder
    from clinicflow.followup_service import FollowUpService, JobScheduler, OnSend
    from clinicflow.llm import LLM
    from clinicflow.understanding.classifier import IntentModel


P = ParamSpec("P")
R = TypeVar("R")

#: Said once (with ``progress``) before the intent model is trained in a data directory.
TRAINING_NOTICE = (
    "Primeira vez com este catálogo nesta pasta de dados: preparando o entendimento das "
    "mensagens (pode levar até um minuto)…"
)


def _one_chat_at_a_time(
    method: Callable[Concatenate[Engine, str, P], R],
) -> Callable[Concatenate[Engine, str, P], R]:
    """Run an out-of-turn change under its chat's lock (read, change, write: atomic)."""

    @wraps(method)
    def held(self: Engine, chat_id: str, *args: P.args, **kwargs: P.kwargs) -> R:
        with self.chat_lock(chat_id):
            return method(self, chat_id, *args, **kwargs)

    return held


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
    handoff: Handoff | None = None  # reads like the old dict too: handoff["reason"]
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
        progress: show progress while the embedding index is (re)built and the intent model
            trained (the first start on a data dir, or after the catalog changed).
        llm_budget_s: wall-clock seconds all LLM calls of one turn may take together.
        native_threads: threads of the native libraries (BLAS, LanceDB, Arrow) in this
            process (see :mod:`clinicflow.native`); None leaves them as they are.
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
        native_threads: int | None = 1,
        database_url: str | None = None,
    ) -> None:
        from clinicflow.embeddings import USEEmbedder
        from clinicflow.index import Index

        if native_threads is not None:
            from clinicflow.native import limit_native_threads

            limit_native_threads(native_threads)

        self.data_dir = Path(data_dir)
        self.clock: Clock = clock or SystemClock()
        self.llm = llm
        self.llm_budget_s = llm_budget_s
        self.store = Store(self.data_dir, database_url)
        self.embedder = embedder or USEEmbedder()
        # A chat's turns and changes one at a time (chat_lock); other chats in parallel. The
        # engine-wide lock only guards swapping the catalog (reload).
        self.lock = threading.RLock()
        self._chats = ChatLocks()
        self.follow_ups: FollowUpService | None = None
        self._scripts: dict[str, Script] = {}
        self._flows: dict[str, Flow] = {}
        # Built once per data dir; two engines starting on a fresh one take turns.
        with build_lock(self.data_dir):
            if progress:
                self._notice_training(catalog)
            self.index = Index.open(catalog, self.data_dir, self.embedder, progress=progress)
            self.model = self._open_model(catalog, progress=progress)
        self.steps = Steps(self)
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
        self.understander = Understander(catalog, self.index, self.model)
        self.dialogue = Dialogue(
            catalog,
            self._scripts,
            self._flows,
            answerer=self.steps.answer if self.llm else None,
            hours=self.hours,
            faq_finder=self._nearest_faq,
        )
        self.campaigns = PhraseMatcher(
            (c.id, pattern) for c in catalog.clinic.campaigns for pattern in c.patterns
        )

    def _nearest_faq(self, text: str, script: Script | None) -> tuple[FAQ | None, float]:
        vector = self.understander.vector(text)
        if vector is None or self.understander.index is None:
            return None, 0.0
        return self.understander.nearest_faq(vector, script)

    def reload(self, path: str | Path | None = None) -> Catalog:
        """Load the catalog again; conversations in flight keep the version they started on.

        Raises ScriptError (and keeps the current catalog) when the new one has errors.
        """
        from clinicflow.index import Index
        from clinicflow.loader import load_catalog

        catalog = load_catalog(path if path is not None else self.catalog.root)
        with build_lock(self.data_dir):
            index = Index.open(catalog, self.data_dir, self.embedder)
            model = self._open_model(catalog)
        with self.lock:
            self.index, self.model = index, model
            self._install(catalog)
        return catalog

    def _notice_training(self, catalog: Catalog) -> None:
        """One line on stderr before a first run (or a changed catalog) trains the model, so
        the wait (up to a minute) is not silence."""
        import sys

        from clinicflow.understanding.classifier import IntentModel

        if not IntentModel.ready(catalog, self.data_dir, self.embedder):
            print(TRAINING_NOTICE, file=sys.stderr, flush=True)

    def _open_model(self, catalog: Catalog, *, progress: bool = False) -> IntentModel:
        """The intent model for this catalog (trained once, then read from the data dir)."""
        from clinicflow.understanding.classifier import IntentModel

        return IntentModel.open(catalog, self.data_dir, self.embedder, progress=progress)

    def restore_version(self, digest: str) -> Script | None:
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
        from clinicflow.checkpoints import turn_saver

        # The checkpoint and the history of a turn: one connection, one commit (flush).
        self.saver = turn_saver(self.store)
        return build_graph(self.steps, self.saver)

    def chat_lock(self, chat_id: str) -> AbstractContextManager[None]:
        """Hold a chat: its turns and out-of-turn changes run one at a time."""
        return self._chats.hold(chat_id)

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
        phone: str | None = None,
    ) -> TurnResult:
        """Process one patient message and return what to reply.

        Never raises for bad input: empty, emoji-only or huge texts get a sensible reply.
        ``phone`` (E.164 digits) is her number when ``chat_id`` does not show it (an
        ``@lid``); the hand-off brief shows it.
        """
        if not isinstance(chat_id, str) or not chat_id.strip():
            raise ConversationError("a chat id is required")
        text = encodable(text) if isinstance(text, str) else ""
        turn = Turn(
            chat_id=chat_id,
            text=text,
            now=self.clock.now(),
            meta={
                "message_id": message_id,
                "push_name": push_name,
                "referral": dict(referral) if referral else None,
                "kind": kind,
                "phone": phone,
            },
        )
        started = turn.started = perf_counter()
        if self.follow_ups is not None:
            self.follow_ups.cancel(chat_id)  # she wrote: whatever was planned is moot
        with self.chat_lock(chat_id):
            try:
                self._graph.invoke(
                    {}, config=self._config(chat_id), context=turn, durability="exit"
                )
                self.saver.flush(chat_id)  # state and history: one transaction
            except BaseException:
                self.saver.discard(chat_id)
                raise
        self._plan_follow_up(turn)
        return self.result_of(turn, (perf_counter() - started) * 1000)

    def _plan_follow_up(self, turn: Turn) -> None:
        if self.follow_ups is not None and turn.replies and turn.conv.status == "bot":
            self.follow_ups.after_bot_message(turn.chat_id, turn.conv, turn.now)

    def enable_follow_ups(
        self, on_send: OnSend, *, autorun: bool | None = None, scheduler: JobScheduler | None = None
    ) -> FollowUpService:
        """Start sending follow-ups to patients who went quiet (see clinicflow.followup_service).

        Args:
            on_send: receives each follow-up as a TurnResult (``extra["kind"] == "follow_up"``).
            autorun: fire in real time (default: only with the system clock; with a
                ManualClock, ``engine.follow_ups.scheduler.advance_to(...)`` fires them).
        """
        from clinicflow.followup_service import FollowUpService

        if self.follow_ups is None:
            self.follow_ups = FollowUpService(self, on_send, autorun=autorun, scheduler=scheduler)
        return self.follow_ups

    @_one_chat_at_a_time
    def record_event(self, chat_id: str, type_: str, **data: Any) -> None:
        """Store one event of a conversation outside a turn."""
        conv = self.conversation(chat_id) or Conversation()
        where = {"script_id": conv.script_id or "", "state": conv.state or ""}
        self.store.write([history.event_row(chat_id, type_, data, where, iso(self.clock.now()))])

    async def ahandle(self, chat_id: str, text: str | None, **meta: Any) -> TurnResult:
        """:meth:`handle` for asyncio code: runs the turn in a worker thread."""
        return await asyncio.to_thread(self.handle, chat_id, text, **meta)

    def _config(self, chat_id: str) -> Any:
        return {"configurable": {"thread_id": chat_id}}

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
            script_id=conv.script_id,
            state=conv.state,
            slots=dict(conv.slots),
            status=conv.status or "bot",
            lead_status=conv.lead_status,
            intent=u.intent if u else None,
            confidence=u.confidence if u else 0.0,
            source=u.source if u else "fallback",
            handoff=turn.handoff,
            ms=ms,
            llm_calls=len(turn.llm_calls),
            extra=dict(extra or {}),
        )

    def state_of(self, chat_id: str) -> dict[str, Any] | None:
        """The checkpointed state of a conversation (its JSON-plain form, see
        :meth:`Conversation.to_checkpoint`), or None if it never wrote."""
        conv = self.conversation(chat_id)
        return conv.to_checkpoint() if conv is not None else None

    def conversation(self, chat_id: str) -> Conversation | None:
        """The conversation of a chat as a typed value, or None if it never wrote."""
        snapshot = self._graph.get_state(self._config(chat_id))
        if not snapshot or not snapshot.values:
            return None
        return Conversation.from_checkpoint(snapshot.values)

    def write_change(self, chat_id: str, turn: Turn, extra: Sequence[Row] = ()) -> None:
        """Write an out-of-turn change (hand-back, close, scheduled) to checkpoint and tables
        (``extra`` rows in the same transaction)."""
        with self.chat_lock(chat_id):
            try:
                self._graph.update_state(
                    self._config(chat_id), _state(turn.conv), as_node="persist"
                )
                script = self.dialogue.script_of(turn.conv)
                rows = history.turn_rows(turn.conv, turn, script, None, inbound=False)
                self.saver.stage(chat_id, [*rows, *extra])
                self.saver.flush(chat_id)
            except BaseException:
                self.saver.discard(chat_id)
                raise

    def _existing(self, chat_id: str) -> Turn:
        conv = self.conversation(chat_id)
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

    @_one_chat_at_a_time
    def hand_back(self, chat_id: str) -> TurnResult:
        """The secretary returns the chat to the bot: it resumes exactly where it paused.

        A conversation on an older script version moves to the current version here when
        the step it paused on still exists there.
        """
        turn = self._existing(chat_id)
        conv = turn.conv
        conv.status = "bot"
        conv.repairs = 0
        conv.urgent = False
        resume = conv.resume_state or conv.state
        conv.resume_state = None
        current = self.catalog.script(conv.script_id or "")
        if (
            current is not None
            and current.digest != conv.digest
            and current.has_state(resume or "")
        ):
            conv.digest, conv.version = current.digest, current.version
            turn.event("script_upgraded", version=current.version)
        script = self.dialogue.script_of(conv)
        turn.event("handed_back")
        self.dialogue.say(conv, turn, self.dialogue.text("handed_back"))
        if script is not None and resume and script.has_state(resume):
            conv.state = resume
            if script.state(resume).is_terminal:
                conv.state = script.start
            self.dialogue.reprompt(conv, turn)
        else:
            self.dialogue.routing_menu(conv, turn, intro=False)
        self._resolve_handoffs(chat_id, iso(turn.now))
        conv.last_outbound_at = iso(turn.now)
        self.write_change(chat_id, turn)
        self._plan_follow_up(turn)
        return self.result_of(turn, 0.0)

    @_one_chat_at_a_time
    def start(self, chat_id: str, script_id: str) -> TurnResult:
        """Open a conversation directly on a script (``clinicflow chat --script``)."""
        script = self.catalog.script(script_id)
        if script is None:
            raise ConversationError(f"no script {script_id!r} in the catalog")
        turn = Turn(chat_id=chat_id, text="", now=self.clock.now())
        turn.conv = self.conversation(chat_id) or Conversation()
        if turn.conv.status in ("", "closed"):
            self.steps.fresh(turn.conv, turn)
        self.dialogue.start_script(turn.conv, turn, script)
        turn.conv.last_outbound_at = iso(turn.now)
        self.write_change(chat_id, turn)
        self._plan_follow_up(turn)
        return self.result_of(turn, 0.0)

    @_one_chat_at_a_time
    def take_over(self, chat_id: str) -> None:
        """A person answers from the clinic's phone: the bot goes silent in this chat.

        Works for a chat the bot never saw too (staff wrote first): it starts in ``human``.
        """
        if self.follow_ups is not None:
            self.follow_ups.cancel(chat_id)
        turn = Turn(chat_id=chat_id, text="", now=self.clock.now())
        turn.conv = self.conversation(chat_id) or Conversation()
        if turn.conv.is_new:
            self.steps.fresh(turn.conv, turn)
            turn.conv.origin = "staff"
        if turn.conv.status != "human":
            turn.conv.status = "human"
            turn.event("human_took_over")
            self.write_change(chat_id, turn)

    @_one_chat_at_a_time
    def close(self, chat_id: str, reason: str = "staff") -> None:
        """Close a conversation (the staff finished it)."""
        if self.follow_ups is not None:
            self.follow_ups.cancel(chat_id)
        turn = self._existing(chat_id)
        turn.conv.status = "closed"
        turn.event("closed", reason=reason)
        self._resolve_handoffs(chat_id, iso(turn.now))
        self.write_change(chat_id, turn)

    @_one_chat_at_a_time
    def restart(self, chat_id: str) -> bool:
        """Close a chat's conversation and forget its state: the next message starts a new
        one (``clinicflow chat --new``). The history tables keep the old one. False when
        the chat had no conversation."""
        if self.conversation(chat_id) is None:
            return False
        self.close(chat_id, reason="restart")
        with self.store.transaction() as conn:
            for table in ("writes", "checkpoints"):
                conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (chat_id,))
        return True

    @_one_chat_at_a_time
    def mark_scheduled(self, chat_id: str, appointment_at: datetime | None = None) -> None:
        """Staff booked the patient: the lead becomes ``scheduled``; ``appointment_at`` (the
        appointment's date and time, when given) goes in the event and in
        ``leads.appointment_at``."""
        if self.follow_ups is not None:
            self.follow_ups.cancel(chat_id)
        turn = self._existing(chat_id)
        turn.conv.lead_status = "scheduled"
        turn.conv.lead_times["scheduled"] = iso(turn.now)
        extra: list[Row] = []
        if appointment_at is None:
            turn.event("scheduled")
        else:
            turn.event("scheduled", appointment_at=iso(appointment_at))
            extra.append(Row("leads", {"chat_id": chat_id, "appointment_at": iso(appointment_at)}))
        self.write_change(chat_id, turn, extra)

    def screen_edit(self, chat_id: str, text: str) -> bool:
        """Whether the new text of a message she edited after it was answered is urgent (the
        safety detector alone; the runner then handles it as a new message)."""
        del chat_id  # routes the call to the chat's worker
        return self.understander.assess(text[:MAX_TEXT]).urgent if text.strip() else False

    def classify(self, text: str) -> Understanding:
        """The intent of a message out of any conversation (``clinicflow classify``)."""
        return self.understander.understand(encodable(text) if isinstance(text, str) else "")

    def close_resources(self) -> None:
        """Stop the follow-ups and close the database connections."""
        if self.follow_ups is not None:
            self.follow_ups.close()
            self.follow_ups = None
        self.store.close()
