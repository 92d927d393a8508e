"""The durable inbox: every inbound WhatsApp message, stored once, before WAHA gets its 200.

Rows live in the ``inbox`` table of the clinic's SQLite file (beside the engine's history).
The dedupe is atomic (one write transaction per message, ``UNIQUE(session, message_id)``):
WAHA's retries, the ``message`` / ``message.any`` pair and engine duplicates hit
``INSERT OR IGNORE`` and only the first copy becomes a row, even when two copies arrive at the
same instant. WhatsApp's own message key (``wa_key``) catches the copies WAHA files under
another id: one message delivered under both the ``@lid`` and the ``@c.us`` id is stored once.
A key counts as the same message when the row is the same person's, or the ids are a lid and
a phone (the twins); two phones whose keys happen to collide are two messages. Envelope ids
are kept too (``inbox_envelopes``), so a byte-identical retry is recognised before anything
else. One edit delivered both as ``message`` (a protocolMessage) and as
``message.edited`` (the same message edited to the same text) is stored once.

A row's ``chat_id`` is the person's identity (:mod:`clinicflow.identity`), recorded in the
same transaction; the id she wrote from is in ``meta["from"]``. The twin id of a duplicate is
linked to the original's identity.

A row moves ``received → processing → done`` (or ``ignored`` / ``error`` / ``revoked``)::

    received     stored, acknowledged, waiting for its chat's worker
    processing   part of a batch (``batch_id``) handed to the engine
    done         the turn ran and its replies are in the outbox (same transaction)
    ignored      nothing to do (a takeover for an unknown chat, a protocol message)
    error        the engine failed on it; logged, never retried in a loop
    revoked      she deleted it for everyone before its turn ran: kept, never answered

An edit or a revoke of a message still ``received`` is applied at the door, in the edit's
own insert transaction (:meth:`Inbox.add`): the turn then runs on the new text, or not at
all. Later edits and revokes stay ``received`` for the worker to record.

After a crash, :meth:`Inbox.pending` returns what was not finished; a ``processing`` batch is
checked against the engine's history before it runs again (see ``clinicflow.runner.processor``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from clinicflow.database import Connection
from clinicflow.identity import Identities, Person
from clinicflow.webhooks import Inbound

SCHEMA = """
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
# Named, in the order _item reads them: a migrated file may hold its columns in another order.
_COLUMNS = (
    "id, session, message_id, envelope_id, chat_id, timestamp, text, kind, meta, status, "
    "batch_id, received_at, processed_at, wa_key"
)
# Kinds whose text an edit may replace (not events, not staff commands).
_EDITABLE = ("text", "image", "video", "document", "other")


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
    wa_key: str | None = None


def ensure_schema(conn: Connection) -> None:
    """Create the inbox tables if they are missing, and add what older files lack."""
    with conn:
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(inbox)")}
        if "wa_key" not in columns:
            conn.execute("ALTER TABLE inbox ADD COLUMN wa_key TEXT")
        conn.execute("CREATE INDEX IF NOT EXISTS inbox_key ON inbox (session, wa_key)")


class Inbox:
    """Durable, deduplicating store of inbound messages.

    Args:
        conn: a connection to the clinic's database (:func:`clinicflow.storage.connect`).
            Use it from one thread (the runner's event loop).
        identities: the identity tables on the same connection (default: opened here).
    """

    def __init__(self, conn: Connection, identities: Identities | None = None) -> None:
        self.conn = conn
        ensure_schema(conn)
        self.identities = identities or Identities(conn)
        if not conn.execute("SELECT 1 FROM wa_ids LIMIT 1").fetchone():
            # A data dir from before identities: each chat so far is its own person.
            with conn:
                conn.execute(
                    "INSERT OR IGNORE INTO wa_ids (wa_id, identity, seen_at) "
                    "SELECT chat_id, chat_id, MIN(received_at) FROM inbox GROUP BY chat_id"
                )

    def add(
        self, inbound: Inbound, *, kind: str | None = None, person: Person | None = None
    ) -> bool:
        """Store one inbound message unless it is already known.

        Args:
            inbound: the parsed webhook.
            kind: overrides ``inbound.kind`` (``takeover``, ``staff_command``, ``staff_note``).
            person: who wrote it (:meth:`Identities.resolve`); the row is filed under her
                identity and her ids are recorded with it. None: filed under the chat id.

        Returns:
            True when the message is new; False for a duplicate (same envelope, same message
            id, or same WhatsApp key in the same session).
        """
        person = person or Person(inbound.chat_id, None, inbound.chat_id, (inbound.chat_id,))
        kind = kind or inbound.kind
        meta = {
            "push_name": inbound.push_name,
            "referral": inbound.referral,
            "media_url": inbound.media_url,
            "media_mimetype": inbound.media_mimetype,
            "media_error": inbound.media_error,
            "event": inbound.event,
            "from": inbound.chat_id,
            "phone": person.phone,
            "target_key": inbound.target_key,
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
            twin = self._same_message(inbound, person)
            if twin is not None:  # the same message under her other id: learn that id
                self.identities.link(person.ids, twin, now)
                return False
            if kind == "edit" and self._same_edit(inbound, person.identity):
                return False
            status = "received"
            if kind == "edit" and self._edit_pending(inbound, person.identity):
                status = "done"  # applied at the door: her turn runs on the new text
            elif kind == "revoke" and self._revoke_pending(inbound, person.identity):
                status = "done"
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO inbox (session, message_id, envelope_id, chat_id, "
                "timestamp, text, kind, meta, received_at, status, wa_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    inbound.session,
                    inbound.message_id,
                    inbound.envelope_id,
                    person.identity,
                    inbound.timestamp,
                    inbound.text,
                    kind,
                    json.dumps(meta, ensure_ascii=False),
                    now,
                    status,
                    inbound.wa_key or None,
                ),
            )
            if cursor.rowcount == 1:
                self.identities.record(person, now, wrote=kind != "takeover")
                return True
            return False

    def _same_message(self, inbound: Inbound, person: Person) -> str | None:
        """The identity of a stored copy of this message (same WhatsApp key), if any."""
        if not inbound.wa_key:
            return None
        rows = self.conn.execute(
            "SELECT chat_id, meta FROM inbox WHERE session = ? AND wa_key = ?",
            (inbound.session, inbound.wa_key),
        ).fetchall()
        for chat_id, meta in rows:
            written_from = json.loads(meta or "{}").get("from") or chat_id
            servers = {str(written_from).rpartition("@")[2], inbound.chat_id.rpartition("@")[2]}
            if chat_id == person.identity or servers == {"lid", "c.us"}:
                return str(chat_id)
        return None

    def _same_edit(self, inbound: Inbound, identity: str) -> bool:
        """Whether this edit is already stored: the one edit delivered both as ``message``
        (a protocolMessage) and as ``message.edited``, under ids of their own — the same
        message edited to the same text."""
        if not inbound.target_key or not inbound.text:
            return False
        row = self.conn.execute(
            "SELECT 1 FROM inbox WHERE session = ? AND chat_id = ? AND kind = 'edit' "
            "AND text = ? AND json_extract(meta, '$.target_key') = ? LIMIT 1",
            (inbound.session, identity, inbound.text, inbound.target_key),
        ).fetchone()
        return row is not None

    def _edit_pending(self, inbound: Inbound, identity: str) -> bool:
        if not inbound.target_key or not inbound.text:
            return False  # an encrypted edit: the new text is unknown
        row = self.conn.execute(
            "SELECT id, text, meta FROM inbox WHERE session = ? AND wa_key = ? AND chat_id = ? "
            f"AND status = 'received' AND kind IN ({', '.join('?' * len(_EDITABLE))})",
            (inbound.session, inbound.target_key, identity, *_EDITABLE),
        ).fetchone()
        if row is None:
            return False
        meta = json.loads(row[2] or "{}")
        meta.setdefault("edited_from", row[1])
        self.conn.execute(
            "UPDATE inbox SET text = ?, meta = ? WHERE id = ?",
            (inbound.text, json.dumps(meta, ensure_ascii=False), row[0]),
        )
        return True

    def _revoke_pending(self, inbound: Inbound, identity: str) -> bool:
        if not inbound.target_key:
            return False
        cursor = self.conn.execute(
            "UPDATE inbox SET status = 'revoked', processed_at = ? WHERE session = ? "
            "AND wa_key = ? AND chat_id = ? AND status = 'received'",
            (time.time(), inbound.session, inbound.target_key, identity),
        )
        return cursor.rowcount > 0

    def by_key(self, session: str, wa_key: str, chat_id: str) -> InboxItem | None:
        """The row of a chat with this WhatsApp key (the message an edit or revoke is about)."""
        row = self.conn.execute(
            f"SELECT {_COLUMNS} FROM inbox WHERE session = ? AND wa_key = ? AND chat_id = ?",
            (session, wa_key, chat_id),
        ).fetchone()
        return None if row is None else _item(row)

    def pending(self, chat_id: str | None = None) -> list[InboxItem]:
        """Unfinished rows (received or processing), in ``payload.timestamp`` order.

        Args:
            chat_id: only this chat's rows; None for every chat (restart recovery).
        """
        sql = f"SELECT {_COLUMNS} FROM inbox WHERE status IN ('received', 'processing')"
        params: tuple[Any, ...] = ()
        if chat_id is not None:
            sql += " AND chat_id = ?"
            params = (chat_id,)
        rows = self.conn.execute(sql + " ORDER BY timestamp, id", params).fetchall()
        return [_item(row) for row in rows]

    def pending_count(self) -> int:
        """How many rows are unfinished (a count, for /health and /metrics)."""
        row = self.conn.execute(
            "SELECT COUNT(*) FROM inbox WHERE status IN ('received', 'processing')"
        ).fetchone()
        return int(row[0])

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
    values = tuple(row)
    (id_, session, message_id, _env, chat_id, ts, text, kind, meta, status, batch_id) = values[:11]
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
        wa_key=values[13] if len(values) > 13 else None,
    )


__all__ = ["OPEN", "SCHEMA", "Inbox", "InboxItem", "ensure_schema"]
