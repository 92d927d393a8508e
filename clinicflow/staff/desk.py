"""The secretaries' desk: who may see a conversation, who gets a hand-off, who did what.

:class:`Desk` puts together the accounts, the assignments, the audit and the live hub over
the engine's history (``Store``). It decides; the runner does the talking (outbox, engine
calls in threads, HTTP). Rules:

- an administrator sees and acts on everything; a secretary on the conversations assigned to
  her and on the unassigned queue (open hand-offs nobody holds). Acting on a queued
  conversation (reply, hand back, …) makes it hers;
- a new hand-off goes to the secretary on duty with the fewest open conversations
  (:mod:`clinicflow.staff.assignment`) and its WhatsApp notice to her phone alone; with
  nobody on duty the notice goes to everyone (clinic.yaml ``staff:`` and every account with a
  phone) — exactly the behaviour of a clinic without accounts;
- an urgent hand-off nobody acted on within ``renotify_after_s`` is noticed again to
  everyone, once;
- every action is recorded (:mod:`clinicflow.staff.audit`) with who, how and when.

Used from the event loop's thread (its connection is the runner's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clinicflow.clock import Clock, SystemClock, iso
from clinicflow.database import Connection
from clinicflow.errors import ClinicflowError
from clinicflow.hours import BusinessHours
from clinicflow.identity import Identities
from clinicflow.metrics_history import QueueItem, handoff_queue
from clinicflow.phones import staff_chat_id
from clinicflow.staff.accounts import Account, Accounts
from clinicflow.staff.assignment import Assignments
from clinicflow.staff.audit import Audit
from clinicflow.staff.events import DeskEvent, Hub
from clinicflow.staff.transcript import record_human_message
from clinicflow.storage import Store

RENOTIFY_AFTER_S = 300.0
OPEN_STATUSES = ("waiting_human", "human")


class DeskError(ClinicflowError):
    """An action the desk refuses; ``status`` is the HTTP answer (403, 404, 400)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Actor:
    """Who acts: a person with an account, or the shared token, a clinic.yaml phone, the
    runner itself (``account_id`` None; those act as administrators)."""

    name: str
    role: str
    account_id: int | None = None
    via: str = "inbox"
    phone: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @classmethod
    def of(cls, account: Account, via: str) -> Actor:
        return cls(account.name, account.role, account.id, via, account.phone)


SYSTEM = Actor("clinicflow", "admin", via="system")


@dataclass(frozen=True)
class QueueRow:
    """An open hand-off as the inbox lists it."""

    item: QueueItem
    holder: str | None
    mine: bool
    phone: str | None


class Desk:
    """See the module docstring.

    Args:
        conn: the runner's connection to ``clinicflow.db`` (desk tables, identities).
        store: the engine's history (conversations, hand-offs, messages).
        accounts: the staff accounts.
        hours: returns the clinic's current business hours (they change on reload).
        staff_phones: returns the clinic.yaml staff phones (E.164 digits).
        clock: the clinic's clock.
        hub: where live events go (default a new one).
        renotify_after_s: minutes, in seconds, before an unclaimed urgent hand-off is
            noticed again to everyone.
    """

    def __init__(
        self,
        conn: Connection,
        store: Store,
        accounts: Accounts,
        *,
        hours: Callable[[], BusinessHours],
        staff_phones: Callable[[], Iterable[str]],
        clock: Clock | None = None,
        hub: Hub | None = None,
        renotify_after_s: float = RENOTIFY_AFTER_S,
    ) -> None:
        self.conn = conn
        self.store = store
        self.accounts = accounts
        self.identities = Identities(conn)
        self.hours = hours
        self.staff_phones = staff_phones
        self.clock: Clock = clock or SystemClock()
        self.hub = hub or Hub()
        self.renotify_after_s = renotify_after_s
        self.assignments = Assignments(conn)
        self.audit = Audit(conn)

    # -- who sees what ----------------------------------------------------------------------

    def is_open(self, chat_id: str) -> bool:
        """The conversation waits for or is with a person."""
        conv = self.store.conversation(chat_id)
        return conv is not None and conv.get("status") in OPEN_STATUSES

    def holder(self, chat_id: str) -> Account | None:
        found = self.assignments.of(chat_id)
        return None if found is None else self.accounts.get(found.account_id)

    def can_see(self, actor: Actor, chat_id: str) -> bool:
        if actor.is_admin:
            return True
        found = self.assignments.of(chat_id)
        if found is not None:
            return found.account_id == actor.account_id
        return self.store.open_handoff(chat_id) is not None

    def require(self, actor: Actor, chat_id: str) -> None:
        """Raise DeskError unless ``actor`` may see and act on the conversation."""
        if self.can_see(actor, chat_id):
            return
        holder = self.holder(chat_id)
        if holder is not None:
            raise DeskError(f"Esta conversa está com {holder.name}.", 403)
        raise DeskError("Esta conversa não está na fila nem com você.", 403)

    def everyone(self) -> list[str]:
        """Every staff chat id to notify: clinic.yaml's phones and the accounts' phones."""
        phones = [*self.staff_phones(), *(a.phone for a in self.accounts.active() if a.phone)]
        return list(dict.fromkeys(staff_chat_id(p) for p in phones if p))

    def queue(self, actor: Actor) -> list[QueueRow]:
        """Open hand-offs ``actor`` may see: urgent first, then the longest waiting."""
        held = self.assignments.all()
        names = {a.id: a.name for a in self.accounts.all()}
        rows = []
        for item in handoff_queue(self.store, now=self.clock.now()):
            holder = held.get(item.chat_id)
            if not actor.is_admin and holder is not None and holder.account_id != actor.account_id:
                continue
            rows.append(
                QueueRow(
                    item=item,
                    holder=names.get(holder.account_id) if holder else None,
                    mine=holder is not None and holder.account_id == actor.account_id,
                    phone=self.identities.phone_of(item.chat_id),
                )
            )
        return rows

    # -- hand-offs ---------------------------------------------------------------------------

    def on_handoff(self, chat_id: str, *, urgent: bool, brief: str) -> list[tuple[str, str]]:
        """Assign a new hand-off and say who gets its notice: ``[(staff chat id, text)]``."""
        now = self.clock.now()
        ts = now.timestamp()
        chosen: Account | None = None
        current = self.holder(chat_id)
        if current is not None and current.active:
            chosen = current  # she already has this patient
        else:
            secretaries = self.accounts.active("secretary")
            chosen = self.assignments.choose(secretaries, self.hours(), now, self.is_open)
            if chosen is not None:
                self.assignments.assign(chat_id, chosen.id, ts, claimed=False)
                self._record(SYSTEM, chat_id, "assigned", to=chosen.name, reason="duty")
        row = self.store.open_handoff(chat_id)
        if row is not None:
            self.assignments.noticed(int(row["id"]), chat_id, urgent, brief, ts)
        self.hub.publish(DeskEvent("handoff", chat_id, urgent,
                                   {"assigned_to": chosen.id if chosen else None}))  # fmt: skip
        if chosen is None:
            return [(target, brief) for target in self.everyone()]
        if not chosen.phone:
            return []
        return [(staff_chat_id(chosen.phone), f"📌 Para você, {chosen.name}:\n\n{brief}")]

    def renotices(self) -> list[tuple[str, str]]:
        """Notices due again: urgent hand-offs nobody acted on for ``renotify_after_s``."""
        now = self.clock.now().timestamp()
        out: list[tuple[str, str]] = []
        for notice in self.assignments.unclaimed_urgent(now - self.renotify_after_s):
            self.assignments.renoticed(notice.handoff_id, now)
            row = self.store.open_handoff(notice.chat_id)
            if row is None or int(row["id"]) != notice.handoff_id:
                continue  # resolved meanwhile
            minutes = max(1, round((now - notice.at) / 60))
            text = f"⏰ URGENTE sem resposta há {minutes} min — alguém pode assumir?\n\n"
            out += [(target, text + notice.brief) for target in self.everyone()]
            self._record(SYSTEM, notice.chat_id, "renotified", minutes=minutes)
            self.hub.publish(DeskEvent("handoff", notice.chat_id, True, {"renotice": True}))
        return out

    # -- actions -----------------------------------------------------------------------------

    def _record(self, actor: Actor, chat_id: str, action: str, **data: Any) -> None:
        self.audit.record(chat_id, action, actor=actor.name, account_id=actor.account_id,
                          via=actor.via, at=iso(self.clock.now()), data=data)  # fmt: skip

    def claim(self, actor: Actor, chat_id: str) -> None:
        """Take a conversation from the queue (an administrator may take anyone's)."""
        if actor.account_id is None:
            raise DeskError("Só uma pessoa com conta pode assumir uma conversa.", 400)
        self.require(actor, chat_id)
        if self.store.conversation(chat_id) is None:
            raise DeskError("Conversa não encontrada.", 404)
        previous = self.holder(chat_id)
        self.assignments.assign(chat_id, actor.account_id, self.clock.now().timestamp(),
                                claimed=True)  # fmt: skip
        self._record(actor, chat_id, "claimed",
                     **({"from": previous.name} if previous and previous.id != actor.account_id
                        else {}))  # fmt: skip
        self.hub.publish(DeskEvent("assignment", chat_id))

    def transfer(self, actor: Actor, chat_id: str, to_name: str) -> tuple[Account, str | None]:
        """Give the conversation to another person; returns her and her notice's chat id."""
        self.require(actor, chat_id)
        target = self.accounts.by_name(to_name)
        if target is None or not target.active:
            raise DeskError(f"Não há conta ativa chamada {to_name!r}.", 404)
        previous = self.holder(chat_id)
        self.assignments.assign(chat_id, target.id, self.clock.now().timestamp(), claimed=False)
        self._record(actor, chat_id, "transferred", to=target.name,
                     **({"from": previous.name} if previous else {}))  # fmt: skip
        self.hub.publish(DeskEvent("assignment", chat_id))
        return target, staff_chat_id(target.phone) if target.phone else None

    def release(self, actor: Actor, chat_id: str) -> None:
        """Put the conversation back in the queue."""
        self.require(actor, chat_id)
        if self.assignments.of(chat_id) is None:
            return
        self.assignments.release(chat_id)
        self._record(actor, chat_id, "released")
        self.hub.publish(DeskEvent("assignment", chat_id))

    def before(self, actor: Actor, chat_id: str) -> None:
        """Check and prepare an action on a conversation: acting on a queued conversation
        makes it the secretary's; any action stops the urgent re-notice."""
        self.require(actor, chat_id)
        now = self.clock.now().timestamp()
        found = self.assignments.of(chat_id)
        if found is None and actor.account_id is not None and actor.role == "secretary":
            self.assignments.assign(chat_id, actor.account_id, now, claimed=True)
            self._record(actor, chat_id, "claimed")
        elif found is not None:
            self.assignments.mark_claimed(chat_id, now)
        self.assignments.settle(chat_id, now)

    def after(self, actor: Actor, chat_id: str, action: str, **data: Any) -> None:
        """Record an action done; a hand-back or a close ends the assignment."""
        self._record(actor, chat_id, action, **data)
        if action in ("handback", "close"):
            self.assignments.release(chat_id)
        self.hub.publish(DeskEvent("message" if action == "reply" else "status", chat_id))

    async def person_wrote(self, chat_id: str, texts: Sequence[str]) -> None:
        """Someone answered from the clinic's phone (or another tool driving the session):
        her words go in the transcript, and the urgent re-notice stops."""
        now = self.clock.now()
        for text in texts:
            await asyncio.to_thread(record_human_message, self.store, chat_id, text, iso(now))
        self.assignments.mark_claimed(chat_id, now.timestamp())
        self.assignments.settle(chat_id, now.timestamp())
        self.changed(chat_id)

    def changed(self, chat_id: str) -> None:
        """The conversation's transcript or status changed (a turn, a phone message)."""
        self.hub.publish(DeskEvent("message", chat_id))


__all__ = ["RENOTIFY_AFTER_S", "SYSTEM", "Actor", "Desk", "DeskError", "QueueRow"]
