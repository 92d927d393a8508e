"""The outbox: every reply is stored before it is sent, and marked when WAHA accepts it.

Rows live in the ``outbox`` table of the clinic's SQLite file. :class:`Sender` runs one task
per chat with pending rows, so replies to one chat leave in order while different chats send
concurrently. Each row goes through WAHA's anti-ban sequence::

    sendSeen → startTyping → pause (∝ length, capped) → stopTyping → sendText

and is marked ``sent`` right after the 2xx. A retryable :class:`~clinicflow.errors.ChannelError`
(WAHA down, 5xx, 422 not WORKING) puts the row back with exponential backoff; the rows behind
it in the same chat wait, so the order holds. A non-retryable error marks the row ``failed``.

Exactly once: each row gets its WhatsApp message id when it is stored (``client_id``, sent as
``sendText``'s pre-generated ``id``), and every attempt sends that same id. WAHA answering after
the client's timeout, a crash between WAHA's 2xx and the ``sent`` mark, a restart: the retry
carries the id of the message WhatsApp already has, so it never becomes a second message.

When sends fail because WAHA is away, the sender checks WAHA every ``probe_every`` seconds
(``probe``); the moment it answers, every back-off is cut short (:meth:`Sender.wake_all`), so
the first pending reply leaves within about a second of WAHA's return rather than at the end
of a long back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from clinicflow.clock import Clock, SystemClock
from clinicflow.database import DB_ERRORS, ChatOwnership, Connection
from clinicflow.errors import ChannelError
from clinicflow.waha import WahaClient, new_message_id

logger = logging.getLogger("clinicflow.outbox")

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    text TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'reply',
    batch_id TEXT,
    source_message_ids TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    hold_until REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    created_at REAL NOT NULL,
    sent_at REAL,
    waha_message_id TEXT,
    client_id TEXT
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (status, chat_id, id);
CREATE INDEX IF NOT EXISTS outbox_batch ON outbox (batch_id);
CREATE INDEX IF NOT EXISTS outbox_waha_id ON outbox (waha_message_id);
CREATE INDEX IF NOT EXISTS outbox_client_id ON outbox (client_id);
"""

#: Seconds before a chat another runner held is looked at again (several runners, PostgreSQL).
OWNER_RETRY_S = 0.2

KINDS = ("reply", "handoff_notice", "follow_up", "media_ack", "staff_ack")


@dataclass(frozen=True)
class OutMessage:
    """A message to put in the outbox."""

    chat_id: str
    text: str
    kind: str = "reply"
    batch_id: str | None = None
    source_message_ids: tuple[str, ...] = ()
    not_before: float | None = None  # unix time on the clinic's clock: held until the opening


class PendingRow(NamedTuple):
    """A row waiting to be sent (see :meth:`Outbox.next_for`)."""

    id: int
    text: str
    attempts: int
    next_attempt_at: float  # real unix time of the next try (retry backoff)
    hold_until: float  # unix time on the clinic's clock before which it must not leave
    client_id: str | None = None  # the WhatsApp message id every attempt sends


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff: ``base · 2^(attempt-1)``, capped at ``cap`` seconds."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt + 1``."""
        return float(min(self.cap, self.base * 2 ** max(0, attempt - 1)))


def ensure_schema(conn: Connection) -> None:
    """Create the outbox table, and add the columns an older file lacks."""
    from clinicflow.schema import add_missing_columns

    with conn:
        add_missing_columns(conn, SCHEMA)
        conn.executescript(SCHEMA)


class Outbox:
    """The ``outbox`` table.

    Two times gate a row. ``hold_until`` is the clinic's business time (unix seconds on
    ``clock``): a hand-off notice waits for the opening. ``next_attempt_at`` is real time
    (``time.time()``): the retry backoff after a failed send, which is about the network and
    so never follows a test's or a simulation's clock.

    Args:
        conn: a connection to the clinic's database, used from one thread.
        clock: the clinic's clock (the engine's); default the system clock.
    """

    def __init__(self, conn: Connection, clock: Clock | None = None) -> None:
        self.conn = conn
        self.clock: Clock = clock or SystemClock()
        ensure_schema(conn)

    def business_now(self) -> float:
        """The clinic clock's current unix time (what ``hold_until`` is compared with)."""
        return self.clock.now().timestamp()

    def insert(self, messages: Iterable[OutMessage]) -> None:
        """Add rows inside the caller's open transaction (``with conn:``)."""
        now = time.time()
        self.conn.executemany(
            "INSERT INTO outbox (chat_id, text, kind, batch_id, source_message_ids, created_at, "
            "hold_until, client_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    m.chat_id,
                    m.text,
                    m.kind,
                    m.batch_id,
                    json.dumps(list(m.source_message_ids)),
                    now,
                    m.not_before or 0,
                    new_message_id(),
                )
                for m in messages
            ],
        )

    def scrub_pending(self, batch_id: str, text: str) -> int:
        """Take a message she deleted for everyone out of the staff notices of its turn
        (``batch_id``) that are not sent yet (held until the opening, or backing off).
        Returns how many were changed."""
        from clinicflow.storage import scrub_text

        changed = 0
        with self.conn:
            rows = self.conn.execute(
                "SELECT id, text FROM outbox WHERE batch_id = ? AND kind = 'handoff_notice' "
                "AND status = 'pending'",
                (batch_id,),
            ).fetchall()
            for row_id, notice in rows:
                scrubbed = scrub_text(notice, text)
                if scrubbed != notice:
                    self.conn.execute("UPDATE outbox SET text = ? WHERE id = ?", (scrubbed, row_id))
                    changed += 1
        return changed

    def enqueue(self, messages: Sequence[OutMessage]) -> None:
        """Add rows in their own transaction."""
        with self.conn:
            self.insert(messages)

    def has_batch(self, batch_id: str) -> bool:
        """True when rows for this inbound batch exist (restart recovery)."""
        found = self.conn.execute("SELECT 1 FROM outbox WHERE batch_id = ? LIMIT 1", (batch_id,))
        return found.fetchone() is not None

    def next_for(self, chat_id: str) -> PendingRow | None:
        """The oldest pending row of a chat, or None."""
        # In order, except that a hand-off notice held for the opening hour waits behind
        # everything else (an urgent notice at night must not queue behind it).
        row = self.conn.execute(
            "SELECT id, text, attempts, next_attempt_at, hold_until, client_id FROM outbox "
            "WHERE status = 'pending' AND chat_id = ? "
            "ORDER BY (hold_until > ?), id LIMIT 1",
            (chat_id, self.business_now()),
        ).fetchone()
        if row is None:
            return None
        pending = PendingRow(*row)
        if not pending.client_id:  # a row stored before ids: give it one, once, durably
            client_id = new_message_id()
            with self.conn:
                self.conn.execute(
                    "UPDATE outbox SET client_id = ? WHERE id = ? AND client_id IS NULL",
                    (client_id, pending.id),
                )
            pending = pending._replace(client_id=client_id)
        return pending

    def seconds_until_due(self, row: PendingRow) -> float:
        """How long ``row`` must still wait: its retry backoff and its business-hours hold."""
        return max(row.next_attempt_at - time.time(), row.hold_until - self.business_now())

    def pending_chats(self) -> list[str]:
        """Chats with rows still to send."""
        rows = self.conn.execute("SELECT DISTINCT chat_id FROM outbox WHERE status = 'pending'")
        return [row[0] for row in rows.fetchall()]

    def clear_backoff(self) -> int:
        """Make every pending row due now (WAHA is back); returns how many were waiting."""
        with self.conn:
            cursor = self.conn.execute(
                "UPDATE outbox SET next_attempt_at = 0 WHERE status = 'pending' "
                "AND next_attempt_at > 0"
            )
        return cursor.rowcount

    def backing_off(self) -> bool:
        """True while a pending row waits for its retry back-off."""
        row = self.conn.execute(
            "SELECT 1 FROM outbox WHERE status = 'pending' AND next_attempt_at > 0 LIMIT 1"
        ).fetchone()
        return row is not None

    def mark_sent(self, row_id: int, waha_message_id: str | None) -> None:
        """Record WAHA's acceptance (committed at once)."""
        with self.conn:
            self.conn.execute(
                "UPDATE outbox SET status = 'sent', sent_at = ?, waha_message_id = ?, "
                "attempts = attempts + 1 WHERE id = ?",
                (time.time(), waha_message_id, row_id),
            )

    def mark_retry(self, row_id: int, error: str, next_at: float) -> None:
        """Count a failed attempt and schedule the next one."""
        with self.conn:
            self.conn.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? "
                "WHERE id = ?",
                (error[:500], next_at, row_id),
            )

    def mark_failed(self, row_id: int, error: str) -> None:
        """Give up on a row (non-retryable error)."""
        with self.conn:
            self.conn.execute(
                "UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? "
                "WHERE id = ?",
                (error[:500], row_id),
            )

    def depth(self) -> int:
        """Rows waiting to be sent."""
        row = self.conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()
        return int(row[0])

    def is_own(
        self,
        chat_id: str | Iterable[str],
        waha_message_id: str,
        text: str,
        window_s: float = 600,
        *,
        wa_key: str | None = None,
    ) -> bool:
        """True when a ``fromMe`` message is one of ours: its WAHA id (or WhatsApp key, the
        same under the ``@lid`` and the ``@c.us`` id) is in the outbox, or the same text went
        to one of ``chat_id`` lately.

        The text check covers engines that echo API sends as ``source: app`` with another id,
        and echoes that arrive before WAHA's answer to ``sendText`` gave us the id. A
        ``source: api`` message that matches nothing was sent by another tool (the WAHA
        dashboard, Chatwoot, n8n): a person, not us.
        """
        row = self.conn.execute(
            "SELECT 1 FROM outbox WHERE waha_message_id = ? LIMIT 1", (waha_message_id,)
        ).fetchone()
        if row is None and wa_key:  # the id we chose: known before WAHA answers
            row = self.conn.execute(
                "SELECT 1 FROM outbox WHERE client_id = ? LIMIT 1", (wa_key,)
            ).fetchone()
        if row is None and wa_key:
            pattern = "%\\_" + wa_key.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            row = self.conn.execute(
                "SELECT 1 FROM outbox WHERE waha_message_id LIKE ? ESCAPE '\\' LIMIT 1",
                (pattern,),
            ).fetchone()
        if row is not None:
            return True
        chats = [chat_id] if isinstance(chat_id, str) else list(dict.fromkeys(chat_id))
        marks = ", ".join("?" * len(chats))
        row = self.conn.execute(
            f"SELECT 1 FROM outbox WHERE chat_id IN ({marks}) AND text = ? AND created_at > ? "
            "AND status IN ('pending', 'sent') LIMIT 1",
            (*chats, text, time.time() - window_s),
        ).fetchone()
        return row is not None


class Sender:
    """Sends the outbox through WAHA: one task per chat, chats in parallel.

    Args:
        outbox: the table.
        waha: the WAHA client (started by the caller).
        typing_delay_max: cap of the human-like pause, seconds (0: no pause).
        backoff: retry schedule for retryable failures.
        on_event: called with ``(name, fields)`` for metrics and logs
            (``sent``, ``retry``, ``failed``, ``recovered``).
        probe: ``async () -> bool``, True when WAHA answers again; while rows back off after
            retryable failures it is asked every ``probe_every`` seconds, and its first True
            cuts every back-off short. None: back-offs run their course.
        probe_every: seconds between probes.
        owner: which chats this runner may send to when several share one PostgreSQL
            (:class:`~clinicflow.database.ChatOwnership`); None: every chat.
        on_waha: called with what a send showed of WAHA: True after a send WAHA took, False
            when WAHA could not be reached (connection refused, timeout) or failed (5xx).
            A refusal of one message (4xx) says nothing about WAHA and is not reported.
    """

    CHARS_PER_SECOND = 30.0

    def __init__(
        self,
        outbox: Outbox,
        waha: WahaClient,
        *,
        typing_delay_max: float = 3.0,
        backoff: Backoff | None = None,
        on_event: Callable[[str, dict[str, object]], None] | None = None,
        probe: Callable[[], Awaitable[bool]] | None = None,
        probe_every: float = 1.0,
        owner: ChatOwnership | None = None,
        on_waha: Callable[[bool], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.waha = waha
        self.typing_delay_max = typing_delay_max
        self.backoff = backoff or Backoff()
        self.on_event = on_event or (lambda name, fields: None)
        self.probe = probe
        self.probe_every = probe_every
        self.owner = owner
        self.on_waha = on_waha or (lambda up: None)
        self._watch: asyncio.Task[None] | None = None
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._unseen: set[str] = set()  # chats with something new to mark as read
        self._closed = False

    def kick(self, chat_id: str) -> None:
        """Make sure the chat's task runs (and wakes up now if it is backing off)."""
        if self._closed:
            return
        self._unseen.add(chat_id)
        task = self._tasks.get(chat_id)
        if task is not None and not task.done():
            self._wake[chat_id].set()
            return
        self._wake[chat_id] = asyncio.Event()
        self._tasks[chat_id] = asyncio.create_task(self._run(chat_id), name=f"send:{chat_id}")

    def kick_all(self) -> None:
        """Kick every chat with pending rows (startup, the sweep)."""
        for chat_id in self.outbox.pending_chats():
            self.kick(chat_id)

    def wake_all(self) -> None:
        """WAHA is back: cut every back-off short and send what is pending now."""
        waiting = self.outbox.clear_backoff()
        if waiting:
            self.on_event("recovered", {"rows": waiting})
        self.kick_all()

    def _watch_for_recovery(self) -> None:
        if self.probe is None or self._closed:
            return
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._recovery(), name="send:recovery")

    async def _recovery(self) -> None:
        # Only a return counts: WAHA seen away, then answering. A WAHA that answers the probe
        # all along while refusing sends (a 5xx on sendText) keeps the exponential back-off.
        assert self.probe is not None
        away = False
        while self.outbox.backing_off():
            await asyncio.sleep(self.probe_every)
            try:
                up = await self.probe()
            except Exception:  # a probe that fails is a WAHA still away
                up = False
            if not up:
                away = True
            elif away:
                self.wake_all()
                return

    async def close(self) -> None:
        """Stop every task; unsent rows stay pending for the next start."""
        self._closed = True
        tasks = list(self._tasks.values())
        if self._watch is not None:
            tasks.append(self._watch)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()

    @property
    def active(self) -> int:
        """Chats currently being sent to."""
        return sum(1 for task in self._tasks.values() if not task.done())

    async def _run(self, chat_id: str) -> None:
        if self.owner is not None and not self.owner.acquire(chat_id):
            if self._tasks.get(chat_id) is asyncio.current_task():
                del self._tasks[chat_id]
            # Another runner owns the chat and sends its rows; it looks for more before it
            # lets go, but a row queued between that look and its release would wait for a
            # sweep: look again shortly, for as long as rows wait and the chat is held.
            asyncio.get_running_loop().call_later(OWNER_RETRY_S, self._retry, chat_id)
            return
        drained = False
        try:
            await self._send_all(chat_id)
            drained = True
        finally:
            if self.owner is not None:
                self.owner.release(chat_id)
                # A row another runner queued while we held the chat (its try failed): ours.
                if drained and not self._closed and self.outbox.next_for(chat_id) is not None:
                    asyncio.get_running_loop().call_soon(self.kick, chat_id)

    def _retry(self, chat_id: str) -> None:
        with contextlib.suppress(*DB_ERRORS):  # the database away: the sweep looks again
            if not self._closed and self.outbox.next_for(chat_id) is not None:
                self.kick(chat_id)

    async def _send_all(self, chat_id: str) -> None:
        wake = self._wake[chat_id]
        while True:
            row = self.outbox.next_for(chat_id)
            if row is None:
                if self._tasks.get(chat_id) is asyncio.current_task():
                    del self._tasks[chat_id]  # nothing kept per chat once it is idle
                    self._wake.pop(chat_id, None)
                    self._unseen.discard(chat_id)
                return
            wait = self.outbox.seconds_until_due(row)
            if wait > 0:
                # A hold on a manual clock never elapses by sleeping: whoever moves the clock
                # kicks the sender (kick_all), which ends this wait; WAHA's return ends a
                # back-off (wake_all).
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), wait)
                continue
            await self._send_one(chat_id, row)

    async def _send_one(self, chat_id: str, row: PendingRow) -> None:
        row_id, text, attempts = row.id, row.text, row.attempts
        started = time.perf_counter()
        try:
            # WAHA's anti-ban sequence: seen (once per new batch), typing for a pause
            # proportional to the text, then the text. With the pause disabled (0) the typing
            # indicator would flash for nothing, so it is skipped too.
            if chat_id in self._unseen:
                await self._presence(self.waha.send_seen(chat_id))
                self._unseen.discard(chat_id)
            pause = min(self.typing_delay_max, len(text) / self.CHARS_PER_SECOND)
            if pause > 0:
                await self._presence(self.waha.start_typing(chat_id))
                await asyncio.sleep(pause)
                await self._presence(self.waha.stop_typing(chat_id))
            waha_id = await self.waha.send_text(chat_id, text, message_id=row.client_id)
        except ChannelError as exc:
            if exc.status is None or exc.status >= 500:
                self.on_waha(False)
            if exc.retryable:
                delay = self.backoff.delay(attempts + 1)
                self.outbox.mark_retry(row_id, str(exc), time.time() + delay)
                self.on_event("retry", {"row": row_id, "delay_s": delay, "error": str(exc)})
                self._watch_for_recovery()
            else:
                self.outbox.mark_failed(row_id, str(exc))
                self.on_event("failed", {"row": row_id, "error": str(exc)})
            return
        if waha_id is None and row.client_id:  # an empty answer: the id is the one we chose
            waha_id = f"true_{chat_id}_{row.client_id}"
        self.outbox.mark_sent(row_id, waha_id)
        self.on_waha(True)
        ms = (time.perf_counter() - started) * 1000
        self.on_event("sent", {"row": row_id, "ms": round(ms, 1), "chat": chat_id})

    async def _presence(self, call: Awaitable[None]) -> None:
        """Seen/typing are courtesy: a non-retryable refusal must not block the reply."""
        try:
            await call
        except ChannelError as exc:
            if exc.retryable:
                raise
            self.on_event("presence_refused", {"error": str(exc)})


__all__ = [
    "KINDS",
    "SCHEMA",
    "Backoff",
    "OutMessage",
    "Outbox",
    "PendingRow",
    "Sender",
    "ensure_schema",
]
