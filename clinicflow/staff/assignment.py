"""Who has each conversation: assignment, claim, transfer, release, and pending notices.

A hand-off goes to the secretary *on duty* with the fewest open conversations: on duty means
an active ``secretary`` account whose availability switch is on while the clinic is open
(:class:`~clinicflow.hours.BusinessHours`). Ties go to the lower account id. With nobody on
duty it waits in the queue, unassigned, for anyone to claim. Tables, in ``clinicflow.db``::

    assignments      chat_id (pk), account_id, assigned_at, claimed_at (null while she has
                     only been assigned it and has not acted yet), unix seconds
    handoff_notices  handoff_id (pk), chat_id, urgent, brief (the notice text), at,
                     renotified_at (or when someone acted: no re-notice needed): hand-offs
                     whose notice went out, for the re-notice of unclaimed urgent ones

Every SQL statement on these tables lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from clinicflow.database import Connection
from clinicflow.hours import BusinessHours
from clinicflow.staff.accounts import Account

_SCHEMA = """
CREATE TABLE IF NOT EXISTS assignments (
    chat_id TEXT PRIMARY KEY,
    account_id INTEGER NOT NULL,
    assigned_at REAL NOT NULL,
    claimed_at REAL
);
CREATE INDEX IF NOT EXISTS assignments_account ON assignments (account_id);
CREATE TABLE IF NOT EXISTS handoff_notices (
    handoff_id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    urgent INTEGER NOT NULL,
    brief TEXT NOT NULL,
    at REAL NOT NULL,
    renotified_at REAL
);
"""


@dataclass(frozen=True)
class Assignment:
    """A conversation's holder."""

    chat_id: str
    account_id: int
    assigned_at: float
    claimed_at: float | None


@dataclass(frozen=True)
class Notice:
    """A hand-off whose notice went out (see :meth:`Assignments.unclaimed_urgent`)."""

    handoff_id: int
    chat_id: str
    brief: str
    at: float


def on_duty(account: Account, hours: BusinessHours, now: datetime) -> bool:
    """An active, available secretary while the clinic is open."""
    return (
        account.active and account.role == "secretary" and account.available and hours.is_open(now)
    )


class Assignments:
    """The ``assignments`` and ``handoff_notices`` tables on one connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        with conn:
            conn.executescript(_SCHEMA)

    def of(self, chat_id: str) -> Assignment | None:
        row = self.conn.execute(
            "SELECT chat_id, account_id, assigned_at, claimed_at FROM assignments "
            "WHERE chat_id = ?",
            (chat_id,),
        ).fetchone()
        return None if row is None else Assignment(*row)

    def held_by(self, account_id: int) -> list[str]:
        rows = self.conn.execute(
            "SELECT chat_id FROM assignments WHERE account_id = ? ORDER BY assigned_at",
            (account_id,),
        )
        return [str(r[0]) for r in rows.fetchall()]

    def all(self) -> dict[str, Assignment]:
        rows = self.conn.execute(
            "SELECT chat_id, account_id, assigned_at, claimed_at FROM assignments"
        ).fetchall()
        return {str(r[0]): Assignment(*r) for r in rows}

    def choose(
        self,
        accounts: Iterable[Account],
        hours: BusinessHours,
        now: datetime,
        is_open: Callable[[str], bool],
    ) -> Account | None:
        """The secretary on duty with the fewest open conversations (``is_open(chat)``)."""
        candidates = [a for a in accounts if on_duty(a, hours, now)]
        if not candidates:
            return None
        load = {a.id: sum(1 for c in self.held_by(a.id) if is_open(c)) for a in candidates}
        return min(candidates, key=lambda a: (load[a.id], a.id))

    def assign(self, chat_id: str, account_id: int, at: float, *, claimed: bool) -> None:
        """Give the conversation to ``account_id`` (replacing any holder)."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO assignments (chat_id, account_id, assigned_at, claimed_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (chat_id) DO UPDATE SET "
                "account_id = excluded.account_id, assigned_at = excluded.assigned_at, "
                "claimed_at = excluded.claimed_at",
                (chat_id, account_id, at, at if claimed else None),
            )

    def mark_claimed(self, chat_id: str, at: float) -> None:
        """She acted on it: no re-notice for it any more."""
        with self.conn:
            self.conn.execute(
                "UPDATE assignments SET claimed_at = COALESCE(claimed_at, ?) WHERE chat_id = ?",
                (at, chat_id),
            )

    def release(self, chat_id: str) -> None:
        with self.conn:
            self.conn.execute("DELETE FROM assignments WHERE chat_id = ?", (chat_id,))

    # -- notices --------------------------------------------------------------------------

    def noticed(self, handoff_id: int, chat_id: str, urgent: bool, brief: str, at: float) -> None:
        """Remember a hand-off whose notice went out (once per hand-off)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO handoff_notices (handoff_id, chat_id, urgent, brief, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (handoff_id, chat_id, int(urgent), brief, at),
            )

    def scrub(self, chat_id: str, text: str) -> None:
        """Take a message she deleted for everyone out of the notices kept for re-notifying."""
        from clinicflow.storage import scrub_text

        with self.conn:
            for handoff_id, brief in self.conn.execute(
                "SELECT handoff_id, brief FROM handoff_notices WHERE chat_id = ?", (chat_id,)
            ).fetchall():
                scrubbed = scrub_text(brief or "", text)
                if scrubbed != brief:
                    self.conn.execute(
                        "UPDATE handoff_notices SET brief = ? WHERE handoff_id = ?",
                        (scrubbed, handoff_id),
                    )

    def unclaimed_urgent(self, older_than: float) -> list[Notice]:
        """Urgent hand-offs noticed before ``older_than``, not re-noticed, nobody acting."""
        rows = self.conn.execute(
            "SELECT n.handoff_id, n.chat_id, n.brief, n.at FROM handoff_notices n "
            "LEFT JOIN assignments a ON a.chat_id = n.chat_id "
            "WHERE n.urgent = 1 AND n.renotified_at IS NULL AND n.at <= ? "
            "AND (a.chat_id IS NULL OR a.claimed_at IS NULL OR a.claimed_at < n.at) "
            "ORDER BY n.at",
            (older_than,),
        ).fetchall()
        return [Notice(*r) for r in rows]

    def settle(self, chat_id: str, at: float) -> None:
        """Someone acted on the chat: its pending notices need no re-notice."""
        with self.conn:
            self.conn.execute(
                "UPDATE handoff_notices SET renotified_at = COALESCE(renotified_at, ?) "
                "WHERE chat_id = ?",
                (at, chat_id),
            )

    def renoticed(self, handoff_id: int, at: float) -> None:
        with self.conn:
            self.conn.execute(
                "UPDATE handoff_notices SET renotified_at = ? WHERE handoff_id = ?",
                (at, handoff_id),
            )


def redact_notices(conn: Connection, before: float, text: str) -> int:
    """Retention (LGPD): notice texts older than ``before`` (unix time) become ``text``;
    run inside the caller's transaction. Returns how many changed."""
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'handoff_notices'"
    ).fetchone()
    if found is None:
        return 0
    return conn.execute(
        "UPDATE handoff_notices SET brief = ? WHERE at < ? AND brief <> ?", (text, before, text)
    ).rowcount


__all__ = ["Assignment", "Assignments", "Notice", "on_duty", "redact_notices"]
