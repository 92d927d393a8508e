"""One person, one conversation: the identity behind every WhatsApp id she writes from.

WhatsApp shows one person under several ids: her phone (``5511987650003@c.us``), a hidden
linked id (``208898765432109@lid``), and, for Brazilian mobiles created before the ninth
digit, an eight-digit form. The ``identity`` is the one id her conversation is kept under
(the engine's chat id); every id seen maps to it::

    wa_ids       wa_id → identity           every id seen, forever
    identities   identity → phone, reply_to her number (E.164 digits) when known, and the id
                                            she last wrote from (where replies go)
    lid_lookups  lid → pn, checked_at       WAHA's GET /api/{session}/lids/{lid} answers

Rules (:meth:`Identities.resolve`):

- the ids of one message are the chat id, the alternate id in the payload (NOWEB
  ``remoteJidAlt``, GOWS ``SenderAlt``) and the phone WAHA gave for a lid;
- an id already seen keeps its identity, so a conversation that began under a lid continues
  when her phone becomes known later (the phone id joins the lid's identity);
- a new person's identity is her phone id when known, else the lid;
- when two ids of one message belong to different identities (two conversations exist),
  the id she wrote from wins; conversations are never merged.

Mappings are written only with a stored message (:meth:`Identities.record`, called by
:class:`~clinicflow.inbox.Inbox` in the insert's transaction), so a duplicate never creates
an identity, and the twin id of a duplicate is linked to the original's identity.
:class:`Resolver` adds the WAHA lookup for a lid whose phone is unknown (cached in SQLite,
failures retried later).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from clinicflow._wamessage import normalize_chat_id
from clinicflow.database import Connection
from clinicflow.errors import ChannelError
from clinicflow.phones import (
    DEFAULT_COUNTRY,
    chat_id_forms,
    parse_phone,
    phone_of_chat_id,
    well_formed_chat_id,
)

logger = logging.getLogger("clinicflow.identity")

SCHEMA = """
CREATE TABLE IF NOT EXISTS wa_ids (
    wa_id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    seen_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS wa_ids_identity ON wa_ids (identity);
CREATE TABLE IF NOT EXISTS identities (
    identity TEXT PRIMARY KEY,
    phone TEXT,
    reply_to TEXT,
    updated_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS identities_phone ON identities (phone);
CREATE TABLE IF NOT EXISTS lid_lookups (
    lid TEXT PRIMARY KEY,
    pn TEXT,
    checked_at REAL NOT NULL
);
"""

LidLookup = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True)
class Person:
    """Who wrote a message.

    Attributes:
        identity: the chat id her conversation is kept under (the engine's chat id).
        phone: her number as E.164 digits, when known.
        reply_to: the id she wrote from (where replies go).
        ids: every id of hers this message showed (recorded with the message).
    """

    identity: str
    phone: str | None
    reply_to: str
    ids: tuple[str, ...]


def is_lid(chat_id: str | None) -> bool:
    """True for a hidden linked id (``<digits>@lid``)."""
    return isinstance(chat_id, str) and chat_id.endswith("@lid")


class Identities:
    """The identity tables (see the module docstring).

    Args:
        conn: a connection to the clinic's database, used from one thread.
    """

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        with conn:
            conn.executescript(SCHEMA)

    # -- reading ---------------------------------------------------------------------------

    def identity_of(self, wa_id: str) -> str | None:
        """The identity an id belongs to, or None when it was never seen."""
        row = self.conn.execute("SELECT identity FROM wa_ids WHERE wa_id = ?", (wa_id,)).fetchone()
        return None if row is None else str(row[0])

    def phone_of(self, identity: str) -> str | None:
        """Her number (E.164 digits), when known."""
        row = self.conn.execute(
            "SELECT phone FROM identities WHERE identity = ?", (identity,)
        ).fetchone()
        if row is not None and row[0]:
            return str(row[0])
        return phone_of_chat_id(identity)

    def reply_to(self, identity: str) -> str:
        """Where replies to this identity go: the id she last wrote from (else the identity)."""
        row = self.conn.execute(
            "SELECT reply_to FROM identities WHERE identity = ?", (identity,)
        ).fetchone()
        return str(row[0]) if row is not None and row[0] else identity

    def ids_of(self, identity: str) -> list[str]:
        """Every id seen for this identity (the identity itself first)."""
        rows = self.conn.execute(
            "SELECT wa_id FROM wa_ids WHERE identity = ? ORDER BY wa_id", (identity,)
        ).fetchall()
        return list(dict.fromkeys([identity, *(str(r[0]) for r in rows)]))

    def known_lid_phone(self, lid: str) -> str | None:
        """The phone chat id WAHA gave for ``lid`` (None: unknown, hidden or never asked)."""
        row = self.conn.execute("SELECT pn FROM lid_lookups WHERE lid = ?", (lid,)).fetchone()
        return str(row[0]) if row is not None and row[0] else None

    def lookup_due(self, lid: str, now: float, retry_s: float) -> bool:
        """True when WAHA should be asked for ``lid``'s phone (never asked, or a null answer
        older than ``retry_s``)."""
        row = self.conn.execute(
            "SELECT pn, checked_at FROM lid_lookups WHERE lid = ?", (lid,)
        ).fetchone()
        return row is None or (not row[0] and now - float(row[1]) >= retry_s)

    def find(self, text: str, country: str = DEFAULT_COUNTRY) -> str | None:
        """The identity a person at the front desk means: a phone in any spelling (with or
        without country code, with or without Brazil's ninth digit) or a chat id.

        Returns:
            The identity, or None when no id of that person was ever seen.
        """
        text = text.strip()
        candidates: list[str] = []
        if "@" in text:
            candidates.append(normalize_chat_id(text))
        else:
            phone = parse_phone(text, country)
            digits = re.sub(r"\D", "", text)
            if phone:
                candidates += sorted(chat_id_forms(phone))
            if digits:
                candidates += [f"{digits}@c.us", f"{digits}@lid"]
            if phone:
                row = self.conn.execute(
                    "SELECT identity FROM identities WHERE phone = ? "
                    "ORDER BY updated_at DESC LIMIT 1",
                    (phone,),
                ).fetchone()
                if row is not None:
                    return str(row[0])
        for candidate in candidates:
            if well_formed_chat_id(candidate):
                found = self.identity_of(candidate)
                if found is not None:
                    return found
        return None

    # -- resolving -------------------------------------------------------------------------

    def resolve(self, chat_id: str, others: Iterable[str | None] = ()) -> Person:
        """The person behind a message from ``chat_id`` whose other ids are ``others``
        (the payload's alternate id, the phone WAHA gave for a lid). Reads only."""
        ids = list(dict.fromkeys(i for i in (chat_id, *others) if i and well_formed_chat_id(i)))
        if chat_id not in ids:
            ids.insert(0, chat_id)
        if is_lid(chat_id):
            known = self.known_lid_phone(chat_id)
            if known and known not in ids:
                ids.append(known)
        identity = self.identity_of(chat_id)
        if identity is None:
            identity = next((found for i in ids[1:] if (found := self.identity_of(i))), None)
        if identity is None:
            identity = next((i for i in ids if i.endswith("@c.us")), chat_id)
        phone = next((p for i in ids if (p := phone_of_chat_id(i))), None)
        phone = phone or self.phone_of(identity)
        return Person(identity, phone, chat_id, tuple(ids))

    def record(self, person: Person, now: float, *, wrote: bool = True) -> None:
        """Map every id of ``person`` to her identity (existing mappings are kept) and note
        her phone; ``wrote``: she wrote this message, so replies go to ``reply_to``.

        Runs inside the caller's transaction (``with conn:``).
        """
        self.conn.executemany(
            "INSERT OR IGNORE INTO wa_ids (wa_id, identity, seen_at) VALUES (?, ?, ?)",
            [
                (wa_id, person.identity, now)
                for wa_id in dict.fromkeys((person.identity, *person.ids))
            ],
        )
        self.conn.execute(
            "INSERT INTO identities (identity, phone, reply_to, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(identity) DO UPDATE SET "
            "phone = COALESCE(excluded.phone, identities.phone), "
            "reply_to = COALESCE(excluded.reply_to, identities.reply_to), "
            "updated_at = excluded.updated_at",
            (person.identity, person.phone, person.reply_to if wrote else None, now),
        )

    def link(self, wa_ids: Iterable[str], identity: str, now: float) -> None:
        """Map ids not seen before to ``identity`` (the twin id of a duplicate message).

        Runs inside the caller's transaction.
        """
        for wa_id in wa_ids:
            if not well_formed_chat_id(wa_id):
                continue
            self.conn.execute(
                "INSERT OR IGNORE INTO wa_ids (wa_id, identity, seen_at) VALUES (?, ?, ?)",
                (wa_id, identity, now),
            )
            phone = phone_of_chat_id(wa_id)
            if phone:
                self.conn.execute(
                    "INSERT INTO identities (identity, phone, updated_at) VALUES (?, ?, ?) "
                    "ON CONFLICT(identity) DO UPDATE SET "
                    "phone = COALESCE(identities.phone, excluded.phone)",
                    (identity, phone, now),
                )

    def remember_lid(self, lid: str, pn: str | None, now: float) -> None:
        """Cache WAHA's answer for a lid (``pn`` None: the number is hidden)."""
        with self.conn:
            self.conn.execute(
                "INSERT INTO lid_lookups (lid, pn, checked_at) VALUES (?, ?, ?) "
                "ON CONFLICT(lid) DO UPDATE SET pn = COALESCE(excluded.pn, lid_lookups.pn), "
                "checked_at = excluded.checked_at",
                (lid, pn if pn and well_formed_chat_id(pn) else None, now),
            )


class StaffIds:
    """The clinic's staff on every form of their ids: phone with and without Brazil's ninth
    digit, and any ``@lid`` resolved to one of those phones.

    Args:
        phones: the staff phones (E.164 digits, as the clinic loader leaves them).
    """

    def __init__(self, phones: Iterable[str]) -> None:
        canonical = {parse_phone("+" + re.sub(r"\D", "", p)) or re.sub(r"\D", "", p)
                     for p in phones if p}  # fmt: skip
        self.phones = frozenset(p for p in canonical if p)
        self.chat_ids = frozenset(form for p in self.phones for form in chat_id_forms(p))

    def matches(self, person: Person) -> bool:
        """True when ``person`` is one of the staff (by phone or by any of her ids)."""
        if person.phone and person.phone in self.phones:
            return True
        return any(wa_id in self.chat_ids for wa_id in (person.identity, *person.ids))

    def __bool__(self) -> bool:
        return bool(self.phones)


class Resolver:
    """:meth:`Identities.resolve` plus WAHA's lid → phone lookup when the payload has no
    alternate id and the lid's phone is unknown.

    Args:
        identities: the tables.
        lookup: ``lid -> phone chat id | None`` (``WahaClient.lid_phone``); None: no lookups.
        clock: unix time now (the cache's age).
        timeout_s: longest wait for WAHA; on timeout or error the message goes on with what
            is known, and WAHA is asked again next time.
        retry_s: how long a "number hidden" answer is trusted.
    """

    def __init__(
        self,
        identities: Identities,
        lookup: LidLookup | None,
        clock: Callable[[], float],
        *,
        timeout_s: float = 3.0,
        retry_s: float = 86400.0,
    ) -> None:
        self.identities = identities
        self.lookup = lookup
        self.clock = clock
        self.timeout_s = timeout_s
        self.retry_s = retry_s

    async def resolve(self, chat_id: str, alt_chat_id: str | None = None) -> Person:
        """The person behind a message from ``chat_id`` (alternate id ``alt_chat_id``)."""
        pn: str | None = None
        if is_lid(chat_id) and not (alt_chat_id and alt_chat_id.endswith("@c.us")):
            pn = await self._lid_phone(chat_id)
        return self.identities.resolve(chat_id, (alt_chat_id, pn))

    async def _lid_phone(self, lid: str) -> str | None:
        ids = self.identities
        known = ids.known_lid_phone(lid)
        if known or self.lookup is None:
            return known
        identity = ids.identity_of(lid)
        if identity is not None and ids.phone_of(identity):
            return None  # her phone is already known through another id
        if not ids.lookup_due(lid, self.clock(), self.retry_s):
            return None
        try:
            pn = await asyncio.wait_for(self.lookup(lid), self.timeout_s)
        except (ChannelError, TimeoutError) as exc:
            logger.info("lid lookup failed: %s", type(exc).__name__)
            return None
        pn = normalize_chat_id(pn) if pn else None
        ids.remember_lid(lid, pn, self.clock())
        return pn if pn and well_formed_chat_id(pn) else None


__all__ = ["SCHEMA", "Identities", "LidLookup", "Person", "Resolver", "StaffIds", "is_lid"]
