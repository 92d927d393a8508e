"""One conversation as the secretary reads it: transcript, brief, collected fields, actions.

The transcript is the history's ``messages`` (revoked ones left out), oldest first, each line
marked with who wrote it: the patient, the bot, a person of the clinic (kind ``human``: typed
in the inbox, sent through the API or from the clinic's phone) or a follow-up. A patient's
voice note that was transcribed is marked as such (its inbox row has kind ``voice``).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from clinicflow.database import Connection
from clinicflow.metrics_history import HUMAN_KIND
from clinicflow.staff.audit import Action, Audit
from clinicflow.storage import Row, Store

MAX_LINES = 500


@dataclass(frozen=True)
class Line:
    """One message of the transcript; ``who`` is patient, bot, human or follow_up."""

    who: str
    text: str
    kind: str
    at: str
    voice: bool = False


@dataclass(frozen=True)
class ConversationView:
    """Everything the conversation page shows."""

    chat_id: str
    conversation: dict[str, Any]
    handoff: dict[str, Any] | None
    brief: dict[str, Any] | None
    lines: tuple[Line, ...]
    actions: tuple[Action, ...]

    @property
    def status(self) -> str:
        return str(self.conversation.get("status") or "")

    @property
    def slots(self) -> dict[str, Any]:
        value = self.conversation.get("slots")
        return value if isinstance(value, dict) else {}


def _voice_ids(conn: Connection, chat_id: str) -> set[str]:
    """Inbox ids of her voice notes (the runner's table; absent when used as a library)."""
    try:
        rows = conn.execute(
            "SELECT message_id FROM inbox WHERE chat_id = ? AND kind = 'voice'", (chat_id,)
        ).fetchall()
    except sqlite3.OperationalError:
        return set()
    return {str(r[0]) for r in rows}


def _who(message: dict[str, Any]) -> str:
    if message["direction"] == "in":
        return "patient"
    if message["kind"] == HUMAN_KIND:
        return "human"
    return "follow_up" if message["kind"] == "follow_up" else "bot"


def read_view(store: Store, audit: Audit, chat_id: str) -> ConversationView | None:
    """The conversation page's data, or None when there is no such conversation."""
    conv = store.conversation(chat_id)
    if conv is None:
        return None
    handoff = store.open_handoff(chat_id)
    brief = None
    if handoff is not None:
        try:
            brief = json.loads(handoff.get("brief") or "null")
        except ValueError:
            brief = None
    voice = _voice_ids(audit.conn, chat_id)
    lines = tuple(
        Line(
            who=_who(m),
            text=str(m["text"] or ""),
            kind=str(m["kind"] or ""),
            at=str(m["at"]),
            voice=m["direction"] == "in" and m["channel_message_id"] in voice,
        )
        for m in store.messages(chat_id, limit=MAX_LINES)
    )
    return ConversationView(
        chat_id=chat_id,
        conversation=conv,
        handoff=handoff,
        brief=brief if isinstance(brief, dict) else None,
        lines=lines,
        actions=tuple(audit.for_chat(chat_id)),
    )


def record_human_message(store: Store, chat_id: str, text: str, at: str) -> None:
    """Put what a person of the clinic wrote in the transcript (kind ``human``)."""
    conv = store.conversation(chat_id) or {}
    store.write(
        [
            Row(
                "messages",
                {
                    "chat_id": chat_id,
                    "direction": "out",
                    "text": text,
                    "kind": HUMAN_KIND,
                    "script_id": conv.get("script_id") or "",
                    "state": conv.get("state") or "",
                    "at": at,
                },
            )
        ]
    )


__all__ = ["ConversationView", "Line", "read_view", "record_human_message"]
