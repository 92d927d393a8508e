"""The SQLite history: conversations, messages, events, leads, hand-offs, understanding calls.

One file (``clinicflow.db``) in WAL mode inside the data directory. Tables are created and
migrated through sqlite-utils; every column is documented in README.md ("Storage"). Message
bodies are stored here (the secretary needs the transcript) but never written to logs.

Each turn writes a handful of small rows in one transaction, so storage grows linearly with
the conversation (see ``bench/turns.py`` for bytes per turn).
"""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from clinicflow.errors import StorageError

DB_NAME = "clinicflow.db"

_SCHEMA: dict[str, dict[str, type]] = {
    "conversations": {
        "chat_id": str,
        "script_id": str,
        "script_version": str,
        "script_digest": str,
        "state": str,
        "status": str,
        "lead_status": str,
        "score": int,
        "slots": str,
        "patient_name": str,
        "origin": str,
        "campaign_id": str,
        "opted_out": int,
        "handoff_reason": str,
        "urgent": int,
        "lost_reason": str,
        "turns": int,
        "follow_ups_sent": int,
        "started_at": str,
        "updated_at": str,
        "last_inbound_at": str,
        "last_outbound_at": str,
    },
    "messages": {
        "id": int,
        "chat_id": str,
        "direction": str,
        "text": str,
        "kind": str,
        "channel_message_id": str,
        "script_id": str,
        "state": str,
        "at": str,
        "revoked_at": str,  # she deleted it for everyone: kept, but out of the transcript
    },
    "events": {
        "id": int,
        "chat_id": str,
        "type": str,
        "script_id": str,
        "state": str,
        "data": str,
        "at": str,
    },
    "leads": {
        "chat_id": str,
        "status": str,
        "score": int,
        "script_id": str,
        "campaign_id": str,
        "engaged_at": str,
        "qualified_at": str,
        "handed_off_at": str,
        "scheduled_at": str,
        "lost_at": str,
        "lost_reason": str,
        "updated_at": str,
        "appointment_at": str,  # the appointment's date and time (staff marked it scheduled)
    },
    "handoffs": {
        "id": int,
        "chat_id": str,
        "reason": str,
        "urgent": int,
        "red_flags": str,
        "brief": str,
        "status": str,
        "script_id": str,
        "state": str,
        "at": str,
        "resolved_at": str,
    },
    "understanding": {
        "id": int,
        "chat_id": str,
        "source": str,
        "intent": str,
        "confidence": float,
        "purpose": str,
        "model": str,
        "outcome": str,
        "tokens_in": int,
        "tokens_out": int,
        "ms": float,
        "at": str,
    },
    "script_versions": {
        "digest": str,
        "script_id": str,
        "version": str,
        "path": str,
        "source": str,
        "loaded_at": str,
    },
}

_PKS: dict[str, str] = {
    "conversations": "chat_id",
    "messages": "id",
    "events": "id",
    "leads": "chat_id",
    "handoffs": "id",
    "understanding": "id",
    "script_versions": "digest",
}

_INDEXES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("messages", ("chat_id", "id")),
    ("messages", ("channel_message_id",)),
    ("events", ("chat_id", "id")),
    ("events", ("type", "at")),
    ("handoffs", ("status", "at")),
    ("handoffs", ("chat_id",)),
    ("understanding", ("chat_id",)),
    ("conversations", ("status",)),
    ("conversations", ("started_at",)),
)


@dataclass(frozen=True)
class Row:
    """A row to write: table name and values."""

    table: str
    values: Mapping[str, Any]


@functools.lru_cache(maxsize=256)
def _statement(table: str, columns: tuple[str, ...]) -> str:
    names = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join("?" for _ in columns)
    pk = _PKS[table]
    if pk == "id":
        return f'INSERT INTO "{table}" ({names}) VALUES ({marks})'
    updates = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c != pk)
    return (
        f'INSERT INTO "{table}" ({names}) VALUES ({marks}) '
        f'ON CONFLICT("{pk}") DO UPDATE SET {updates}'
    )


def create_history_tables(conn: sqlite3.Connection) -> None:
    """Create the history tables, and add the columns an older file lacks (schema step 1)."""
    db = sqlite_utils.Database(conn)
    with conn:
        for name, columns in _SCHEMA.items():
            table = db.table(name)
            if not table.exists():
                table.create(columns, pk=_PKS[name], not_null=None)
            else:
                missing = {c: t for c, t in columns.items() if c not in table.columns_dict}
                for column, col_type in missing.items():
                    table.add_column(column, col_type)
        for table_name, indexed in _INDEXES:
            db.table(table_name).create_index(list(indexed), if_not_exists=True)


def connect(path: Path) -> sqlite3.Connection:
    """Open a SQLite connection the way every clinicflow component does (WAL, busy timeout).

    Raises:
        StorageError: the data directory cannot be created (a file in the way, permissions).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from clinicflow.datadir import unwritable

        raise unwritable(path.parent, exc) from None
    conn = sqlite3.connect(str(path), check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


class Store:
    """The history tables of one data directory.

    Thread-safe: one connection guarded by a lock (SQLite serialises writers anyway).
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / DB_NAME
        from clinicflow.datadir import ensure_writable

        ensure_writable(self.data_dir)
        try:
            self.conn = connect(self.path)
            self.db = sqlite_utils.Database(self.conn)
            self.lock = threading.RLock()
            self._migrate()
        except sqlite3.Error as exc:
            raise StorageError(
                f"não dá para abrir o banco de dados {self.path}: {exc} (é um arquivo do "
                "clinicflow? o disco tem espaço?)"
            ) from exc

    def _migrate(self) -> None:
        from clinicflow.schema import migrate

        with self.lock:
            migrate(self.conn, self.data_dir)

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; raises StorageError on SQLite failures."""
        with self.lock:
            try:
                with self.conn:
                    yield self.conn
            except sqlite3.Error as exc:
                raise StorageError(f"history write failed: {exc}") from exc

    def write(self, rows: Sequence[Row]) -> None:
        """Insert (or upsert for tables keyed by chat) all ``rows`` in one transaction.

        Plain prepared statements: this runs on every turn, and sqlite-utils' per-row
        ``insert``/``upsert`` (column introspection each call) cost ~0.2 ms a row here.
        """
        with self.transaction() as conn:
            self.write_rows(conn, rows)

    @staticmethod
    def write_rows(conn: sqlite3.Connection, rows: Sequence[Row]) -> None:
        """Insert or upsert ``rows`` inside the caller's transaction."""
        for row in rows:
            columns = [c for c in row.values if c in _SCHEMA[row.table]]
            conn.execute(_statement(row.table, tuple(columns)), [row.values[c] for c in columns])

    def query(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[dict[str, Any]]:
        """Rows of a read query as dicts."""
        with self.lock:
            try:
                cursor = self.conn.execute(sql, params)
            except sqlite3.Error as exc:
                raise StorageError(f"history query failed: {exc}") from exc
            names = [d[0] for d in cursor.description or ()]
            return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def conversation(self, chat_id: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM conversations WHERE chat_id = ?", (chat_id,))
        if not rows:
            return None
        row = rows[0]
        row["slots"] = json.loads(row["slots"] or "{}")
        return row

    def messages(self, chat_id: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The transcript of a chat, oldest first (the last ``limit`` when given).

        Messages the patient deleted for everyone (``revoked_at`` set) are left out.
        """
        visible = "chat_id = ? AND revoked_at IS NULL"
        if limit is None:
            return self.query(f"SELECT * FROM messages WHERE {visible} ORDER BY id", (chat_id,))
        rows = self.query(
            f"SELECT * FROM messages WHERE {visible} ORDER BY id DESC LIMIT ?", (chat_id, limit)
        )
        return rows[::-1]

    def revoke_message(self, chat_id: str, channel_message_id: str, text: str, at: str) -> str:
        """Take a message the patient deleted for everyone out of the transcript.

        Args:
            chat_id: the conversation.
            channel_message_id: the WhatsApp id its turn was stored under (the batch's first).
            text: what she had written (one message may have been merged with others).
            at: when it was deleted (ISO).

        Returns:
            ``revoked`` (the row is kept, marked, and hidden), ``trimmed`` (a merged turn:
            her deleted line is taken out of the text), or ``missing`` (no such turn).
        """
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT id, text FROM messages WHERE chat_id = ? AND direction = 'in' "
                "AND channel_message_id = ? AND revoked_at IS NULL ORDER BY id LIMIT 1",
                (chat_id, channel_message_id),
            ).fetchone()
            if row is None:
                return "missing"
            # The hand-off briefs quote her last messages: the deleted one leaves them too.
            for handoff_id, brief in conn.execute(
                "SELECT id, brief FROM handoffs WHERE chat_id = ?", (chat_id,)
            ).fetchall():
                scrubbed = scrub_text(brief or "", text)
                if scrubbed != brief:
                    conn.execute(
                        "UPDATE handoffs SET brief = ? WHERE id = ?", (scrubbed, handoff_id)
                    )
            lines = str(row[1]).split("\n")
            if text and text in lines and len(lines) > 1:
                lines.remove(text)
                conn.execute(
                    "UPDATE messages SET text = ? WHERE id = ?", ("\n".join(lines), row[0])
                )
                return "trimmed"
            conn.execute("UPDATE messages SET revoked_at = ? WHERE id = ?", (at, row[0]))
            return "revoked"

    def events(self, chat_id: str) -> list[dict[str, Any]]:
        rows = self.query("SELECT * FROM events WHERE chat_id = ? ORDER BY id", (chat_id,))
        for row in rows:
            row["data"] = json.loads(row["data"] or "{}")
        return rows

    def open_handoff(self, chat_id: str) -> dict[str, Any] | None:
        rows = self.query(
            "SELECT * FROM handoffs WHERE chat_id = ? AND status = 'open' ORDER BY id DESC LIMIT 1",
            (chat_id,),
        )
        return rows[0] if rows else None

    def script_source(self, digest: str) -> dict[str, Any] | None:
        rows = self.query("SELECT * FROM script_versions WHERE digest = ?", (digest,))
        return rows[0] if rows else None

    def size_bytes(self) -> int:
        """Bytes on disk of the database and its WAL."""
        total = 0
        for suffix in ("", "-wal"):
            candidate = Path(str(self.path) + suffix)
            if candidate.exists():
                total += candidate.stat().st_size
        return total


#: What a brief or a staff notice says instead of a message she deleted for everyone.
DELETED = "[mensagem apagada pela paciente]"


def scrub_text(container: str, text: str) -> str:
    """``container`` (a brief's JSON, a notice) with every whole occurrence of ``text`` (a
    message she deleted for everyone) replaced by :data:`DELETED`; JSON stays JSON (the text
    is matched as JSON writes it too). Texts under 4 characters are left alone: "oi" would
    match inside other words' quotes."""
    text = text.strip()
    if len(text) < 4 or not container:
        return container
    out = container
    for form in {text, json.dumps(text, ensure_ascii=False)[1:-1]}:
        out = re.sub(rf"(?<!\w){re.escape(form)}(?!\w)", DELETED, out)
    return out
