"""Follow-ups for one engine: planned after each bot message, cancelled when anything happens.

:class:`FollowUpService` joins the pure rules of :mod:`clinicflow.followups` and the durable
:class:`~clinicflow.scheduler.FollowUpScheduler` to an :class:`~clinicflow.engine.Engine`:

- after a turn (or a hand-back) that left the bot waiting in a script state with follow-ups,
  the first follow-up is planned from the bot's message;
- any inbound message, hand-off, take-over, close, opt-out or booking cancels the chat's job
  (the engine calls :meth:`cancel`), and a job that fires for a conversation that moved on is
  recognised as stale and ignored;
- a follow-up that fires is written to the history like a bot message and handed to
  ``on_send`` (the runner puts it in its outbox; ``clinicflow simulate`` collects it), then the
  next one is planned; when none is left, a "give up" job marks the lead lost if she never
  answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

from clinicflow.clock import iso
from clinicflow.dialogue import ROUTING, Conversation, Turn
from clinicflow.followups import Dropped, plan_follow_up, plan_give_up
from clinicflow.scheduler import FiredFollowUp, FollowUpScheduler, JobKind, PendingFollowUp

if TYPE_CHECKING:
    from clinicflow.engine import Engine, TurnResult

OnSend = Callable[["TurnResult"], None]


class JobScheduler(Protocol):
    """What the service asks of its job store (:class:`FollowUpScheduler`, or a recorder)."""

    def start(self) -> None: ...

    def shutdown(self, wait: bool = True) -> None: ...

    def schedule(
        self,
        chat_id: str,
        fire_at: datetime,
        state: str,
        index: int,
        script_digest: str,
        *,
        since: str | datetime | None = None,
        deadline: datetime | None = None,
        kind: JobKind = "follow_up",
    ) -> None: ...

    def cancel(self, chat_id: str) -> bool: ...

    def pending_all(self) -> list[PendingFollowUp]: ...


def _when(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class FollowUpService:
    """Plans, cancels and sends the follow-ups of one engine (see module docstring).

    Args:
        engine: the engine whose conversations get follow-ups.
        on_send: receives each follow-up as a :class:`~clinicflow.engine.TurnResult` whose
            ``extra`` has ``kind="follow_up"`` and a ``batch_id`` unique to that follow-up.
        autorun: fire jobs in real time (default: only with the system clock).
    """

    def __init__(
        self,
        engine: Engine,
        on_send: OnSend,
        *,
        autorun: bool | None = None,
        scheduler: JobScheduler | None = None,
    ) -> None:
        self.engine = engine
        self.on_send = on_send
        # Set before start(): an overdue job may fire the moment the scheduler starts.
        self._lock = threading.Lock()
        self._pending: set[str] = set()
        # A scheduler passed in lives elsewhere (an engine worker's RecordedJobs: the runner's
        # process keeps the jobs): it is told every cancel, it knows which chats have a job.
        self._cancel_always = scheduler is not None
        # Typed as the durable scheduler: simulate and the tests drive its clock methods,
        # which only the engine's own (never a passed-in recorder) is asked for.
        self.scheduler = cast(FollowUpScheduler, scheduler) or FollowUpScheduler(
            engine.data_dir,
            on_fire=self._fire,
            clock=engine.clock,
            hours=engine.hours,
            autorun=autorun,
            database_url=engine.store.target.url,
        )
        self.scheduler.start()
        with self._lock:
            self._pending |= {job.chat_id for job in self.scheduler.pending_all()}

    def close(self) -> None:
        self.scheduler.shutdown()

    # -- planning and cancelling ------------------------------------------------------------

    def cancel(self, chat_id: str) -> None:
        """Drop the chat's pending job (cheap when it has none)."""
        with self._lock:
            if chat_id not in self._pending and not self._cancel_always:
                return
            self._pending.discard(chat_id)
        self.scheduler.cancel(chat_id)

    def after_bot_message(self, chat_id: str, conv: Conversation, at: datetime) -> None:
        """Plan the first follow-up of the state the bot just spoke in."""
        self._plan(chat_id, conv, at, index=0)

    def _plan(self, chat_id: str, conv: Conversation, at: datetime, *, index: int) -> None:
        script = self.engine.dialogue.script_of(conv)
        name = conv.state
        if script is None or not name or name == ROUTING or not script.has_state(name):
            return
        plan = plan_follow_up(
            state=script.state(name),
            script=script,
            sent_so_far=conv.follow_ups_sent,
            last_inbound_at=_when(conv.last_inbound_at),
            bot_message_at=at,
            hours=self.engine.hours,
            opted_out=conv.opted_out,
            status=conv.status,
            index=index,
        )
        if isinstance(plan, Dropped):
            if plan.recordable:
                self.engine.record_event(
                    chat_id, "follow_up_dropped", reason=plan.reason, state=name, index=index
                )
            if index > 0:  # the last follow-up went unanswered: give her until the window ends
                give_up = plan_give_up(
                    last_inbound_at=_when(conv.last_inbound_at), last_follow_up_at=at
                )
                self._schedule(chat_id, give_up, name, index, conv, kind="give_up")
            return
        self._schedule(chat_id, plan.fire_at, name, index, conv, deadline=plan.window_ends_at)

    def _schedule(
        self,
        chat_id: str,
        when: datetime,
        state: str,
        index: int,
        conv: Conversation,
        *,
        kind: str = "follow_up",
        deadline: datetime | None = None,
    ) -> None:
        with self._lock:
            self._pending.add(chat_id)
        self.scheduler.schedule(
            chat_id,
            when,
            state,
            index,
            str(conv.digest),
            since=conv.last_outbound_at,
            deadline=deadline,
            kind="give_up" if kind == "give_up" else "follow_up",
        )

    # -- firing -----------------------------------------------------------------------------

    def fire(self, fired: FiredFollowUp) -> None:
        """Handle a job that came due (a worker is handed it by the runner's scheduler)."""
        self._fire(fired)

    def _fire(self, fired: FiredFollowUp) -> None:
        with self._lock:
            self._pending.discard(fired.chat_id)
        engine = self.engine
        with engine.chat_lock(fired.chat_id):
            conv = engine.conversation(fired.chat_id)
            if conv is None or not self._still_valid(conv, fired):
                return
            turn = Turn(chat_id=fired.chat_id, text="", now=fired.fired_at, conv=conv)
            if fired.kind == "give_up":
                if conv.lead_status not in ("handed_off", "scheduled", "lost"):
                    conv.lead_status, conv.lost_reason = "lost", "no_answer"
                    conv.lead_times["lost"] = iso(fired.fired_at)
                    turn.event("lead_lost", reason="no_answer")
                    engine.write_change(fired.chat_id, turn)
                return
            if fired.dropped is not None:
                turn.event("follow_up_dropped", reason=fired.dropped, state=fired.state)
                engine.write_change(fired.chat_id, turn)
                if fired.index > 0:  # an earlier follow-up went unanswered: she may still be lost
                    last = _when(conv.last_outbound_at) or fired.fired_at
                    give_up = plan_give_up(
                        last_inbound_at=_when(conv.last_inbound_at), last_follow_up_at=last
                    )
                    when = max(fired.fired_at, give_up)
                    self._schedule(
                        fired.chat_id, when, fired.state, fired.index, conv, kind="give_up"
                    )
                return
            result = self._send(conv, turn, fired)
            # Planned under the lock: a message she sends meanwhile must see (and cancel) it,
            # not be overwritten by it.
            self._plan(fired.chat_id, conv, fired.fired_at, index=fired.index + 1)
        self.on_send(result)

    def _still_valid(self, conv: Conversation, fired: FiredFollowUp) -> bool:
        """The job answers the conversation's current bot message, in the same state."""
        return (
            conv.status == "bot"
            and not conv.opted_out
            and conv.state == fired.state
            and conv.digest == fired.digest
            and (conv.last_outbound_at or "") == fired.since
        )

    def _send(self, conv: Conversation, turn: Turn, fired: FiredFollowUp) -> TurnResult:
        script = self.engine.dialogue.script_of(conv)
        assert script is not None
        follow = script.state(fired.state).follow_ups[fired.index]
        self.engine.dialogue.say(conv, turn, follow.say)
        conv.follow_ups_sent += 1
        conv.last_outbound_at = iso(fired.fired_at)
        turn.meta["out_kind"] = "follow_up"
        turn.event("follow_up_sent", state=fired.state, index=fired.index)
        self.engine.write_change(fired.chat_id, turn)
        batch = f"followup:{fired.chat_id}:{fired.since}:{fired.index}"
        return self.engine.result_of(turn, extra={"kind": "follow_up", "batch_id": batch})
