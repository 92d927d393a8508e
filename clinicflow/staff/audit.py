"""Who did what to a conversation, and when: the ``staff_actions`` table.

Every action of the workspace, the staff API and the WhatsApp commands is one row::

    staff_actions   id, chat_id, account_id (null: the shared token, a clinic.yaml phone
                    without an account, or the runner itself), actor (the name shown),
                    via (inbox, api, whatsapp, system), action, data (JSON), at (ISO UTC)

Actions: ``assigned``, ``claimed``, ``transferred``, ``released``, ``reply``, ``handback``,
``scheduled``, ``close``, ``renotified``. A *response* (the report's response time per
secretary) is the first ``reply``, ``handback``, ``scheduled`` or ``close`` after a hand-off.
Every SQL statement on the table lives here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from clinicflow.database import Connection
from clinicflow.storage import Store

RESPONSES = ("reply", "handback", "scheduled", "close")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS staff_actions (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    account_id INTEGER,
    actor TEXT NOT NULL,
    via TEXT NOT NULL,
    action TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS staff_actions_chat ON staff_actions (chat_id, id);
"""


@dataclass(frozen=True)
class Action:
    """One recorded action."""

    chat_id: str
    account_id: int | None
    actor: str
    via: str
    action: str
    data: dict[str, Any]
    at: str


class Audit:
    """The ``staff_actions`` table on one connection (the runner's)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        with conn:
            conn.executescript(_SCHEMA)

    def record(
        self,
        chat_id: str,
        action: str,
        *,
        actor: str,
        account_id: int | None,
        via: str,
        at: str,
        data: dict[str, Any] | None = None,
    ) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO staff_actions (chat_id, account_id, actor, via, action, data, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (chat_id, account_id, actor, via, action,
                 json.dumps(data or {}, ensure_ascii=False), at),
            )  # fmt: skip

    def for_chat(self, chat_id: str, limit: int = 200) -> list[Action]:
        """The chat's actions, oldest first (the last ``limit``)."""
        rows = self.conn.execute(
            "SELECT chat_id, account_id, actor, via, action, data, at FROM staff_actions "
            "WHERE chat_id = ? ORDER BY id DESC LIMIT ?",
            (chat_id, limit),
        ).fetchall()
        return [Action(r[0], r[1], r[2], r[3], r[4], json.loads(r[5] or "{}"), r[6]) for r in rows][
            ::-1
        ]


def responses(store: Store, chat_ids: list[str], cap: str) -> dict[str, list[tuple[str, str]]]:
    """Per chat, ``(at, actor)`` of every response action up to ``cap`` (ISO), oldest first.

    Reads through the history's :class:`~clinicflow.storage.Store` (the report's connection);
    an older data dir without the table has no responses.
    """
    found = store.query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'staff_actions'"
    )
    out: dict[str, list[tuple[str, str]]] = {}
    if not found:
        return out
    marks = ",".join("?" * len(RESPONSES))
    for start in range(0, len(chat_ids), 500):
        chunk = chat_ids[start : start + 500]
        rows = store.query(
            f"SELECT chat_id, actor, at FROM staff_actions WHERE chat_id IN "
            f"({','.join('?' * len(chunk))}) AND action IN ({marks}) AND via <> 'system' "
            "AND at <= ? ORDER BY id",
            [*chunk, *RESPONSES, cap],
        )
        for row in rows:
            out.setdefault(row["chat_id"], []).append((row["at"], row["actor"]))
    return out


__all__ = ["RESPONSES", "Action", "Audit", "responses"]
