"""The durable inbox: every inbound WhatsApp message, stored once, before WAHA gets its 200.

Rows live in the ``inbox`` table of the clinic's SQLite file (beside the engine's history).
``UNIQUE(session, message_id)`` makes the dedupe atomic: WAHA's retries, the ``message`` /
``message.any`` pair and engine duplicates all hit ``INSERT OR IGNORE`` and only the first
copy becomes a row, even when two copies arrive at the same instant. Envelope ids are kept
too (``inbox_envelopes``), so a byte-identical retry is recognised before anything else.

A row moves ``received → processing → done`` (or ``ignored`` / ``error``)::

    received     stored, acknowledged, waiting for its chat's worker
    processing   part of a batch (``batch_id``) handed to the engine
    done         the turn ran and its replies are in the outbox (same transaction)
    ignored      nothing to do (e.g. a takeover for an unknown chat)
    error        the engine failed on it; logged, never retried in a loop

After a crash, :meth:`Inbox.pending` returns what was not finished; a ``processing`` batch is
checked against the engine's history before it runs again (see ``runner.processor``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clinicflow.webhooks import Inbound

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    message_id TEXT NOT NULL,
    envelope_id TEXT,
    chat_id TEXT NOT NULL,
    timestamp REAL NOT NULL DEFAULT 0,
    text TEXT NOT NULL DEFAULT '',
    kind TEXT NOT NULL DEFAULT 'text',
    meta TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'received',
    batch_id TEXT,
    received_at REAL NOT NULL,
    processed_at REAL,
    UNIQUE (session, message_id)
);
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (status, chat_id, timestamp);
CREATE TABLE IF NOT EXISTS inbox_envelopes (
    envelope_id TEXT PRIMARY KEY,
    received_at REAL NOT NULL
);
"""

OPEN = ("received", "processing")


@dataclass(frozen=True)
class InboxItem:
    """One stored inbound message (a row of ``inbox``)."""

    id: int
    session: str
    message_id: str
    chat_id: str
    timestamp: float
    text: str
    kind: str
    meta: dict[str, Any]
    status: str
    batch_id: str | None


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the inbox tables if they are missing (idempotent)."""
    with conn:
        conn.executescript(_SCHEMA)


class Inbox:
    """Durable, deduplicating store of inbound messages.

    Args:
        conn: a connection to the clinic's database (:func:`clinicflow.storage.connect`).
            Use it from one thread (the runner's event loop).
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        ensure_schema(conn)

    def add(self, inbound: Inbound, *, kind: str | None = None) -> bool:
        """Store one inbound message unless it is already known.

        Args:
            inbound: the parsed webhook.
            kind: overrides ``inbound.kind`` (``takeover``, ``staff_command``).

        Returns:
            True when the message is new; False for a duplicate (same envelope, or same
            message id in the same session).
        """
        meta = {
            "push_name": inbound.push_name,
            "referral": inbound.referral,
            "media_url": inbound.media_url,
            "media_mimetype": inbound.media_mimetype,
            "media_error": inbound.media_error,
            "event": inbound.event,
        }
        now = time.time()
        with self.conn:
            if inbound.envelope_id:
                seen = self.conn.execute(
                    "INSERT OR IGNORE INTO inbox_envelopes (envelope_id, received_at) "
                    "VALUES (?, ?)",
                    (inbound.envelope_id, now),
                )
                if seen.rowcount == 0:
                    return False
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO inbox (session, message_id, envelope_id, chat_id, "
                "timestamp, text, kind, meta, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    inbound.session,
                    inbound.message_id,
                    inbound.envelope_id,
                    inbound.chat_id,
                    inbound.timestamp,
                    inbound.text,
                    kind or inbound.kind,
                    json.dumps(meta, ensure_ascii=False),
                    now,
                ),
            )
            return cursor.rowcount == 1

    def pending(self, chat_id: str | None = None) -> list[InboxItem]:
        """Unfinished rows (received or processing), in ``payload.timestamp`` order.

        Args:
            chat_id: only this chat's rows; None for every chat (restart recovery).
        """
        sql = "SELECT * FROM inbox WHERE status IN ('received', 'processing')"
        params: tuple[Any, ...] = ()
        if chat_id is not None:
            sql += " AND chat_id = ?"
            params = (chat_id,)
        rows = self.conn.execute(sql + " ORDER BY timestamp, id", params).fetchall()
        return [_item(row) for row in rows]

    def pending_chats(self) -> list[str]:
        """Chats with unfinished rows (restart recovery)."""
        rows = self.conn.execute(
            "SELECT DISTINCT chat_id FROM inbox WHERE status IN ('received', 'processing')"
        ).fetchall()
        return [row[0] for row in rows]

    def start_batch(self, items: Sequence[InboxItem], batch_id: str) -> None:
        """Mark ``items`` as one batch being processed (committed before the turn runs)."""
        with self.conn:
            self.conn.executemany(
                "UPDATE inbox SET status = 'processing', batch_id = ? WHERE id = ?",
                [(batch_id, item.id) for item in items],
            )

    def finish(
        self, items: Iterable[InboxItem], status: str = "done", *, in_transaction: bool = False
    ) -> None:
        """Mark rows finished. With ``in_transaction`` the caller commits (see ``Outbox``)."""
        params = [(status, time.time(), item.id) for item in items]
        sql = "UPDATE inbox SET status = ?, processed_at = ? WHERE id = ?"
        if in_transaction:
            self.conn.executemany(sql, params)
            return
        with self.conn:
            self.conn.executemany(sql, params)

    def counts(self) -> dict[str, int]:
        """Rows per status (for /metrics)."""
        rows = self.conn.execute("SELECT status, COUNT(*) FROM inbox GROUP BY status").fetchall()
        return {status: count for status, count in rows}

    def prune_envelopes(self, older_than_s: float = 7 * 86400) -> None:
        """Forget envelope ids older than WAHA could still retry (message ids stay forever)."""
        with self.conn:
            self.conn.execute(
                "DELETE FROM inbox_envelopes WHERE received_at < ?", (time.time() - older_than_s,)
            )


def _item(row: sqlite3.Row | tuple[Any, ...]) -> InboxItem:
    (id_, session, message_id, _env, chat_id, ts, text, kind, meta, status, batch_id) = tuple(row)[
        :11
    ]
    return InboxItem(
        id=id_,
        session=session,
        message_id=message_id,
        chat_id=chat_id,
        timestamp=float(ts or 0),
        text=text or "",
        kind=kind or "text",
        meta=json.loads(meta or "{}"),
        status=status,
        batch_id=batch_id,
    )


__all__ = ["OPEN", "Inbox", "InboxItem", "ensure_schema"]
