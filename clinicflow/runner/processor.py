"""Turning stored inbound messages into engine turns, one chat at a time.

One task per person (the identity the inbox files her messages under, whatever id she wrote
from). It takes the rows in ``payload.timestamp`` order, waits for a quiet moment
(``burst_quiet``) so that "oi" / "tudo bem?" / "queria saber do DIU" become one turn, runs the
turn and, in one transaction, puts the replies (to the id she last wrote from) and the
hand-off brief for the staff in the outbox and marks the rows done.

Events that are not messages never reach a turn: an edit or a revoke that came too late to
change a waiting message is recorded in the history (a revoke also takes the message out of
the transcript); calls and reactions are recorded; poll votes and protocol messages are
ignored. The one exception is safety: a late edit whose new text the safety detector calls
urgent is then handled as a new message (urgent hand-off, staff alerted). A staff member's
message that is not a command is kept and ignored.

Crash safety: rows are marked ``processing`` with a ``batch_id`` before the turn. On restart
such a batch is first looked up: outbox rows for it mean only the ``done`` mark was lost; an
inbound row with that ``channel_message_id`` in the engine's history means the turn ran but
its replies never reached the outbox, so they are rebuilt from the history; otherwise the
turn runs again. No reply is produced twice, no message is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from clinicflow.clock import Clock, SystemClock, iso
from clinicflow.database import DB_ERRORS, unreachable
from clinicflow.errors import ChannelError, ConversationError
from clinicflow.inbox import Inbox, InboxItem
from clinicflow.outbox import OWNER_RETRY_S, Outbox, OutMessage, Sender
from clinicflow.phones import staff_chat_id
from clinicflow.pseudonyms import Pseudonyms
from clinicflow.runner.metrics import Metrics, log_event
from clinicflow.runner.staff_commands import StaffCommands
from clinicflow.webhooks import SYSTEM_KINDS

if TYPE_CHECKING:
    from clinicflow.database import ChatOwnership
    from clinicflow.engine import TurnResult
    from clinicflow.staff.desk import Desk
    from clinicflow.waha import WahaClient
    from clinicflow.workers import Turns

Transcriber = Callable[[bytes, str], Awaitable[str | None]]
MERGEABLE = frozenset({"text"})


#: Seconds before a turn the database could not take (out of reach, locked) is tried again.
DEFER_S = 1.0


class _Deferred(Exception):
    """A turn left for later: the database could not be used (its rows stay pending)."""


class Processor:
    """Runs the inbox through the engine (see the module docstring).

    Args:
        engine: the conversation engine.
        inbox: the durable inbox.
        outbox: the outbox table (same connection as the inbox).
        sender: kicked when new rows are in the outbox.
        waha: used to download voice notes.
        metrics: counters to update.
        burst_quiet: seconds of quiet before a burst is merged into one turn (0: no wait).
        transcriber: ``(audio, mimetype) -> text`` for voice notes; None treats them as media.
        clock: the time of staff activity (idle hand-back); default the system clock.
        alias: chat id → pseudonym for logs; default a random key (pseudonyms then change
            with every start).
        owner: which chats this runner may work on when several share one PostgreSQL
            (:class:`~clinicflow.database.ChatOwnership`); None: every chat.
    """

    def __init__(
        self,
        engine: Turns,
        inbox: Inbox,
        outbox: Outbox,
        sender: Sender,
        waha: WahaClient,
        metrics: Metrics,
        *,
        burst_quiet: float = 2.0,
        transcriber: Transcriber | None = None,
        clock: Clock | None = None,
        alias: Pseudonyms | None = None,
        owner: ChatOwnership | None = None,
    ) -> None:
        self.engine = engine
        self.inbox = inbox
        self.outbox = outbox
        self.sender = sender
        self.waha = waha
        self.metrics = metrics
        self.burst_quiet = burst_quiet
        self.transcriber = transcriber
        self.clock: Clock = clock or SystemClock()
        self.identities = inbox.identities
        self.alias = alias or Pseudonyms(secrets.token_bytes(32))
        self.owner = owner
        with inbox.conn:
            inbox.conn.execute(
                "CREATE TABLE IF NOT EXISTS human_activity (chat_id TEXT PRIMARY KEY, at REAL)"
            )
        self.staff = StaffCommands(self)
        self.desk: Desk | None = None  # the secretaries' workspace, when the runner has one
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._arrival: dict[str, float] = {}
        self._closed = False

    # -- scheduling -------------------------------------------------------------------------

    def kick(self, chat_id: str, *, fresh: bool = True) -> None:
        """Make sure the chat's worker runs; ``fresh`` restarts its quiet period."""
        if self._closed:
            return
        if fresh:
            self._arrival[chat_id] = time.monotonic()
        task = self._tasks.get(chat_id)
        if task is None or task.done():
            self._tasks[chat_id] = asyncio.create_task(self._run(chat_id), name=f"turn:{chat_id}")

    def recover(self) -> int:
        """Start workers for every chat left unfinished by a previous process."""
        chats = self.inbox.pending_chats()
        for chat_id in chats:
            self.kick(chat_id, fresh=False)
        return len(chats)

    async def close(self) -> None:
        """Cancel the workers; unfinished rows are picked up by the next start."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    async def idle(self) -> None:
        """Wait until every worker has finished (tests, bench)."""
        while any(not t.done() for t in self._tasks.values()):
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def _run(self, chat_id: str) -> None:
        if self.owner is not None and not self.owner.acquire(chat_id):
            # Another runner works on this chat and sees the row in the shared inbox: it looks
            # for more before it lets go, but a row stored between that look and its release
            # would wait for a sweep. Look again shortly, while rows wait and the chat is held.
            asyncio.get_running_loop().call_later(OWNER_RETRY_S, self._retry, chat_id)
            return
        drained = False
        try:
            while True:
                items = self.inbox.pending(chat_id)
                if not items:
                    drained = True
                    return
                started = [i for i in items if i.status == "processing"]
                if started:
                    batch = [i for i in started if i.batch_id == started[0].batch_id]
                    await self._resume(chat_id, batch)
                    continue
                if self.burst_quiet > 0 and items[0].kind in MERGEABLE:
                    await self._quiet(chat_id)
                    items = self.inbox.pending(chat_id)
                await self._process(chat_id, _unit(items))
        except Exception as exc:
            if isinstance(exc, _Deferred) or unreachable(exc):
                # The database away: the chat's rows stay as they are, looked at again shortly.
                asyncio.get_running_loop().call_later(DEFER_S, self._retry, chat_id)
                return
            log_event("worker_crashed", 40, chat=self.alias(chat_id), error=type(exc).__name__)
            raise  # a bug must not kill the worker silently
        finally:
            if self._tasks.get(chat_id) is asyncio.current_task():
                del self._tasks[chat_id]  # nothing kept per chat once it is idle
                self._arrival.pop(chat_id, None)
            if self.owner is not None:
                self.owner.release(chat_id)
                # A row another runner stored while we held the chat (its try failed): ours.
                if drained and not self._closed and self.inbox.pending(chat_id):
                    asyncio.get_running_loop().call_soon(lambda: self.kick(chat_id, fresh=False))

    def _retry(self, chat_id: str) -> None:
        with contextlib.suppress(*DB_ERRORS):  # the database away: the sweep looks again
            if not self._closed and self.inbox.pending(chat_id):
                self.kick(chat_id, fresh=False)

    async def _quiet(self, chat_id: str) -> None:
        limit = time.monotonic() + 5 * self.burst_quiet
        while True:
            since = time.monotonic() - self._arrival.get(chat_id, 0.0)
            if since >= self.burst_quiet or time.monotonic() >= limit:
                return
            await asyncio.sleep(self.burst_quiet - since)

    # -- one unit ---------------------------------------------------------------------------

    async def _process(self, chat_id: str, unit: Sequence[InboxItem]) -> None:
        batch_id = unit[0].message_id
        self.inbox.start_batch(unit, batch_id)
        kind = unit[0].kind
        if kind == "takeover":
            await self._take_over(chat_id, unit)
        elif kind == "staff_command":
            await self.staff.run(chat_id, unit)
        elif kind == "staff_note":
            self.inbox.finish(unit, "ignored")  # a note among the staff, not for the bot
        elif kind in SYSTEM_KINDS:
            await self._system_event(chat_id, unit[0])
        elif kind in MERGEABLE:
            await self._turn(chat_id, "\n".join(i.text for i in unit), unit, batch_id, "text")
        else:
            # Media: a transcribed voice note is text; anything else (or a failed
            # transcription) goes to the engine with its kind, which acknowledges it, keeps
            # the step, stays silent while a person has the chat, and records it.
            text = await self._transcribe(unit[0]) if kind == "voice" else None
            if text is not None:
                await self._turn(chat_id, text, unit, batch_id, "text")
            else:
                await self._turn(chat_id, unit[0].text or "", unit, batch_id, kind or "media")

    async def _turn(
        self, chat_id: str, text: str, unit: Sequence[InboxItem], batch_id: str, kind: str
    ) -> None:
        first = unit[0].meta
        referral = next((i.meta["referral"] for i in unit if i.meta.get("referral")), None)
        try:
            result = await self.engine.handle(
                chat_id,
                text,
                message_id=batch_id,
                push_name=first.get("push_name"),
                referral=referral,
                kind=kind,
                phone=self.identities.phone_of(chat_id),
            )
        except Exception as exc:  # one bad turn must not stop the chat
            if unreachable(exc):  # nothing was written: the same turn, once it is back
                log_event("turn_deferred", 30, chat=self.alias(chat_id), error=type(exc).__name__)
                raise _Deferred from exc
            log_event("turn_failed", 40, chat=self.alias(chat_id), error=type(exc).__name__)
            self.inbox.finish(unit, "error")
            return
        self.metrics.inc("turns")
        self.metrics.observe_turn(result.ms)
        if result.llm_calls:
            self.metrics.inc("llm_calls", result.llm_calls)
        log_event(
            "turn",
            chat=self.alias(chat_id),
            messages=len(unit),
            intent=result.intent or "-",
            status=result.status,
            replies=len(result.replies),
            ms=round(result.ms, 1),
        )
        self.commit(unit, self.messages_for(result, batch_id, unit))
        if self.desk is not None:
            self.desk.changed(chat_id)

    def messages_for(
        self, result: TurnResult, batch_id: str | None, unit: Sequence[InboxItem] = ()
    ) -> list[OutMessage]:
        """The outbox rows of a turn: its replies (to the id she last wrote from), then the
        hand-off brief for the staff (the secretary it is assigned to, else everyone)."""
        ids = tuple(i.message_id for i in unit)
        to = self.identities.reply_to(result.chat_id)
        out = [OutMessage(to, r, "reply", batch_id, ids) for r in result.replies]
        handoff = result.handoff
        if handoff is not None:
            self.metrics.inc("handoffs", reason=handoff.reason)
            brief = handoff.brief_text
            notify_at = handoff.notify_at  # set when the clinic is closed (not urgent)
            hold = datetime.fromisoformat(notify_at).timestamp() if notify_at else None
            if brief:
                if self.desk is not None:
                    notices = self.desk.on_handoff(
                        result.chat_id, urgent=handoff.urgent, brief=brief
                    )
                else:
                    notices = [
                        (staff_chat_id(s.phone), brief) for s in self.engine.catalog.clinic.staff
                    ]
                for target, text in notices:
                    out.append(OutMessage(target, text, "handoff_notice", batch_id, ids, hold))
            log_event(
                "handoff", chat=self.alias(result.chat_id), reason=handoff.reason,
                urgent=handoff.urgent,
            )  # fmt: skip
        return out

    def commit(self, unit: Sequence[InboxItem], messages: Sequence[OutMessage]) -> None:
        """Outbox rows and the ``done`` mark in one transaction, then wake the senders."""
        with self.inbox.conn:
            self.outbox.insert(messages)
            self.inbox.finish(unit, in_transaction=True)
        for chat in dict.fromkeys(m.chat_id for m in messages):
            self.sender.kick(chat)

    async def _take_over(self, chat_id: str, unit: Sequence[InboxItem]) -> None:
        self.record_human(chat_id)
        try:
            await self.engine.change("take_over", chat_id)
        except ConversationError:
            log_event("takeover_unknown_chat", chat=self.alias(chat_id))
            self.inbox.finish(unit, "ignored")
            return
        self.metrics.inc("takeovers")
        log_event("takeover", chat=self.alias(chat_id))
        self.inbox.finish(unit)
        if self.desk is not None:  # in the transcript, and nobody else is alerted again
            await self.desk.person_wrote(chat_id, [i.text for i in unit if i.text])

    async def _system_event(self, chat_id: str, item: InboxItem) -> None:
        """Record what an event means for the conversation; nothing is ever answered."""
        kind = item.kind
        target_key = item.meta.get("target_key")
        data: dict[str, object] = {"message_id": item.message_id}
        if kind in ("edit", "revoke") and target_key:
            target = self.inbox.by_key(item.session, str(target_key), chat_id)
            data["target"] = target.message_id if target else str(target_key)
            if kind == "edit":
                data["text"] = item.text  # "" when the engine could not show the new text
            elif target is not None and target.status != "revoked":
                batch = target.batch_id or target.message_id
                now = iso(self.engine.clock.now())
                data["transcript"] = await self.engine.change(
                    "revoke_message", chat_id, batch, target.text, now
                )
                data["notices"] = self.outbox.scrub_pending(batch, target.text)
                if self.desk is not None:
                    self.desk.assignments.scrub(chat_id, target.text)
        elif kind == "reaction":
            data.update(emoji=item.text, target=str(target_key or ""))
        elif kind != "call":
            self.inbox.finish([item], "ignored")  # poll votes, protocol messages
            return
        name = {"edit": "message_edited", "revoke": "message_revoked", "call": "call_received",
                "reaction": "reaction"}[kind]  # fmt: skip
        try:
            await self.engine.change("record_event", chat_id, name, **data)
        except Exception as exc:  # the record is not worth stopping the chat for
            log_event("event_not_recorded", 30, chat=self.alias(chat_id), error=type(exc).__name__)
        log_event("chat_event", chat=self.alias(chat_id), kind=kind)
        if kind == "edit" and item.text.strip() and await self._urgent_edit(chat_id, item.text):
            # Safety first on every text she sends: an emergency written into an answered
            # message is handled as a new message (urgent hand-off, staff alerted).
            log_event("urgent_edit", chat=self.alias(chat_id))
            await self._turn(chat_id, item.text, [item], item.message_id, "text")
            return
        self.inbox.finish([item])

    async def _urgent_edit(self, chat_id: str, text: str) -> bool:
        try:
            return bool(await self.engine.change("screen_edit", chat_id, text))
        except Exception as exc:  # never silent: screen it as a turn would
            log_event("edit_not_screened", 40, chat=self.alias(chat_id), error=type(exc).__name__)
            return True

    def record_human(self, chat_id: str) -> None:
        """Remember that a person just wrote from the clinic phone (for the idle hand-back)."""
        with self.inbox.conn:
            self.inbox.conn.execute(
                "INSERT OR REPLACE INTO human_activity (chat_id, at) VALUES (?, ?)",
                (chat_id, self.clock.now().timestamp()),
            )

    async def _transcribe(self, item: InboxItem) -> str | None:
        url = item.meta.get("media_url")
        if not url or item.meta.get("media_error") or self.transcriber is None:
            return None
        try:
            audio = await self.waha.download_media(str(url))
            text = await self.transcriber(audio, str(item.meta.get("media_mimetype") or ""))
        except ChannelError as exc:
            log_event("media_download_failed", chat=self.alias(item.chat_id), status=exc.status)
            return None
        except Exception as exc:  # a failed transcription falls back to the ack
            log_event(
                "transcription_failed", chat=self.alias(item.chat_id), error=type(exc).__name__
            )
            return None
        return text.strip() if text and text.strip() else None

    # -- restart recovery -------------------------------------------------------------------

    async def _resume(self, chat_id: str, batch: Sequence[InboxItem]) -> None:
        batch_id = batch[0].batch_id or batch[0].message_id
        if self.outbox.has_batch(batch_id):
            self.inbox.finish(batch)
            self.sender.kick(chat_id)
            return
        replies = await asyncio.to_thread(self._replies_in_history, chat_id, batch_id)
        if replies is not None:
            ids = tuple(i.message_id for i in batch)
            log_event("recovered_replies", chat=self.alias(chat_id), replies=len(replies))
            to = self.identities.reply_to(chat_id)
            self.commit(batch, [OutMessage(to, r, "reply", batch_id, ids) for r in replies])
            return
        log_event("reprocessing", chat=self.alias(chat_id), messages=len(batch))
        await self._process(chat_id, batch)

    def _replies_in_history(self, chat_id: str, batch_id: str) -> list[str] | None:
        """The replies the engine stored for an inbound batch, or None if it never ran."""
        store = self.engine.store
        found = store.query(
            "SELECT id FROM messages WHERE chat_id = ? AND direction = 'in' "
            "AND channel_message_id = ? ORDER BY id LIMIT 1",
            (chat_id, batch_id),
        )
        if not found:
            return None
        first = found[0]["id"]
        rows = store.query(
            "SELECT text FROM messages WHERE chat_id = ? AND direction = 'out' AND id > ? "
            "AND id < COALESCE((SELECT MIN(id) FROM messages WHERE chat_id = ? "
            "AND direction = 'in' AND id > ?), 9e18) ORDER BY id",
            (chat_id, first, chat_id, first),
        )
        return [str(r["text"]) for r in rows]


def _unit(items: Sequence[InboxItem]) -> list[InboxItem]:
    """The next thing to process: a run of text messages, or one other message."""
    if items[0].kind not in MERGEABLE:
        return [items[0]]
    unit: list[InboxItem] = []
    for item in items:
        if item.kind not in MERGEABLE:
            break
        unit.append(item)
    return unit


__all__ = ["MERGEABLE", "Processor", "Transcriber"]
