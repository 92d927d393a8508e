"""A patient's data rights (LGPD): export everything held about her, erase it, expire texts.

Health information is sensitive personal data (LGPD art. 11). These functions work on a data
directory's database, the one place where patient data lives: its SQLite file, or the
clinic's PostgreSQL schema (``$CLINICFLOW_DATABASE_URL`` or ``database_url``, see
:mod:`clinicflow.database`); they find her by any form of her phone number. The rest of the
data directory (:data:`NOT_PATIENT_DATA`) holds none: the LanceDB index (``index.lance``: the
catalog's examples, and the ``corpus`` table with the embeddings of the understanding corpus
shipped with clinicflow), the intent models trained on those two (``models/``), the key of
the log pseudonyms (``log_key``) and the runner's lock::

    export_patient(data_dir, "+55 (11) 98765-4321")   # -> dict, JSON-ready
    erase_patient(data_dir, "11987654321")              # -> Erasure (rows removed per table)
    redact_expired(data_dir, retention_days=365, now)   # message texts older than the window

Finding her: any of her ids names her: her ``@lid``, her phone chat id, or her number in
any form (with and without Brazil's ninth digit). The identity tables (``wa_ids``,
``identities``, ``lid_lookups``, see :mod:`clinicflow.identity`) lead from that id to her
identity and from there to every id seen for it and her phone, so a conversation kept under
her phone is found from her ``@lid`` and the other way round; any other chat id (``@lid``)
that a row links to her number is followed too. Every table and column is scanned, so tables
added later are covered without naming them here.
A mention counts when a text holds her number in any spelling ("+55 11 98765-4321") or, for
long enough texts, words she wrote.

Erasing: her own rows go (conversation, messages, events, lead, hand-offs, understanding,
LangGraph checkpoints, the pending follow-up job, inbox, outbox and the staff notices about
her), and the links between her ids last. In another conversation's state a mention is
replaced by ``[removido]``; where that state is binary (a LangGraph checkpoint blob) it is
kept and counted in :attr:`Erasure.kept_binary`. What stays is an anonymous line in
``erasures`` (when, and how many rows of each table), so reports can say how many were
erased. Deleted pages are overwritten (``secure_delete``) and the WAL is truncated when no
other process holds it.

On PostgreSQL the same functions give the same result; what differs sits in a few named
helpers (``_pg_*``, :func:`_select`, :func:`_delete`, :func:`_update`, :func:`_reclaim`):

- Tables and columns: those of the current schema, through the adapter's ``sqlite_master``
  and ``PRAGMA table_info`` (``information_schema``). A column counts as text unless it is
  numeric, as on SQLite, so ``bytea`` and ``jsonb`` are scanned too.
- Matching: SQLite calls the matcher from SQL (a registered function); PostgreSQL cannot call
  Python, so the rows are streamed to Python and matched by the same function: the same rows
  are found, at the price of reading every table (these requests are rare and made by hand).
- A row is named by its primary key (by its ``ctid`` in a table without one) instead of
  SQLite's ``rowid``; a ``jsonb`` cell is edited in its strings and keys and written back as
  ``jsonb``.
- Checkpoints: LangGraph keeps one in three tables, all under ``thread_id``: ``checkpoints``
  (the small channel values inline, ``jsonb``), ``checkpoint_blobs`` (the other values,
  msgpack ``bytea``) and ``checkpoint_writes``; her threads' rows go from all three. In
  another chat's checkpoint, a mention in ``jsonb`` is replaced like any text, and one in a
  ``bytea`` blob is kept and counted in ``kept_binary``, as SQLite's binary ``checkpoint``
  is: each turn of that chat writes every channel anew and drops the older checkpoint's blobs
  and writes (:class:`clinicflow.checkpoints.PgTurnSaver`), so the mention lasts as long as
  that chat's state holds it (its ``questions`` keep what it asked), as on SQLite.
- Jobs: APScheduler's ``apscheduler_jobs`` has the same layout on both; her
  ``followup:<chat>`` job goes.
- No ``secure_delete`` and no WAL file to truncate: PostgreSQL keeps the old version of a row
  deleted or edited in the table's pages until VACUUM removes it. Right after an erasure or a
  retention pass commits, a plain ``VACUUM (SKIP_LOCKED)`` of the tables it changed runs
  (outside any transaction; no exclusive lock, the runner keeps working; a table another
  maintenance holds is skipped and left to autovacuum, and a transaction older than the
  erasure still open elsewhere keeps those versions until a later vacuum). VACUUM frees their
  space for reuse without overwriting it, and PostgreSQL's WAL, its archive, replicas and
  backups keep what they hold until they are recycled, as backups of a SQLite file do.
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from clinicflow.clock import iso
from clinicflow.database import DB_ERRORS, DatabaseUrl, is_postgres, resolve, translate
from clinicflow.errors import ClinicflowError, StorageError
from clinicflow.storage import connect

__all__ = [
    "NOT_PATIENT_DATA",
    "REDACTED",
    "Erasure",
    "PatientIds",
    "PatientNotFound",
    "erase_patient",
    "export_patient",
    "patient_ids",
    "redact_expired",
]

REDACTED = "[removido]"
#: What a data directory holds besides the SQLite file; none of it is about a patient, so
#: export and erase leave it alone (see the module docstring).
NOT_PATIENT_DATA = ("index.lance", "models", "log_key", ".lock", ".build.lock")
#: Her words are looked for elsewhere only when at least this long (avoids "oi", "sim").
MIN_WORDS = 12
#: Tables whose rows of *other* chats are edited in place, never deleted.
_STATE_TABLES = frozenset(
    {"conversations", "leads", "events", "handoffs", "understanding"}
    | {"checkpoints", "writes"}  # LangGraph on SQLite
    | {"checkpoint_blobs", "checkpoint_writes"}  # and on PostgreSQL (checkpoints too)
)
#: The identity tables (clinicflow.identity): the links between her ids.
_LINK_TABLES = frozenset({"wa_ids", "identities", "lid_lookups"})
#: Catalog versions and the anonymous erasure log hold no patient data.
_SKIP_TABLES = frozenset({"script_versions", "erasures"})
#: Columns naming the chat a row belongs to.
_CHAT_COLUMNS = ("chat_id", "thread_id")
_SEPARATORS = r"[\s\-().]*"


class PatientNotFound(ClinicflowError):
    """No data about this patient in the data directory."""


@dataclass(frozen=True)
class PatientIds:
    """How one patient appears in the data: chat ids and the spellings of her number."""

    chat_ids: tuple[str, ...]
    numbers: tuple[str, ...]  # digits only: 5511987654321, 551187654321, 11987654321...

    def mentions(self, text: str) -> bool:
        """Whether ``text`` holds one of her chat ids or her number in any spelling."""
        if any(chat in text for chat in self.chat_ids):
            return True
        if not self.numbers or not any(c.isdigit() for c in text):
            return False
        joined = re.sub(r"(?<=\d)[\s\-().]+(?=\d)", "", text)
        return _number_pattern(self.numbers).search(joined) is not None

    def scrub(self, text: str) -> str:
        """``text`` with every mention of her replaced by :data:`REDACTED`."""
        for chat in sorted(self.chat_ids, key=len, reverse=True):
            text = text.replace(chat, REDACTED)
        for number in sorted(self.numbers, key=len, reverse=True):
            pattern = r"\+?" + _SEPARATORS.join(re.escape(d) for d in number)
            text = re.sub(rf"(?<!\d){pattern}(?!\d)", REDACTED, text)
        return text


@functools.lru_cache(maxsize=16)
def _number_pattern(numbers: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(numbers, key=len, reverse=True))
    return re.compile(rf"(?<!\d)(?:{alternatives})(?!\d)")


def patient_ids(phone: str) -> PatientIds:
    """Her chat ids and number spellings from a phone in any form, or a chat id.

    ``+55 (11) 98765-4321``, ``11987654321``, ``5511987654321@c.us`` and
    ``551187654321`` (without the ninth digit) all name the same patient; a ``...@lid`` id
    is taken as it is.

    Raises:
        PatientNotFound: nothing that looks like a phone number or a chat id.
    """
    phone = phone.strip()
    if "@" in phone and not phone.endswith(("@c.us", "@s.whatsapp.net")):
        return PatientIds((phone,), ())
    digits = re.sub(r"\D", "", phone.split("@")[0])
    if len(digits) < 8:
        raise PatientNotFound(f"'{phone}' não parece um número de telefone")
    forms = {digits}
    if len(digits) in (10, 11) and not digits.startswith("55"):
        forms.add("55" + digits)  # a Brazilian number written without the country code
    for form in list(forms):
        if form.startswith("55") and len(form) == 13 and form[4] == "9":
            forms.add(form[:4] + form[5:])  # the old 8-digit mobile form
        if form.startswith("55") and len(form) == 12 and form[4] in "6789":
            forms.add(form[:4] + "9" + form[4:])  # the ninth digit added in 2012-2016
    for form in list(forms):
        if form.startswith("55") and len(form) in (12, 13):
            forms.add(form[2:])  # national form, as patients write it
    chats = sorted(f"{form}@c.us" for form in forms if not _national(form))
    return PatientIds(tuple(chats), tuple(sorted(forms, key=len, reverse=True)))


def _national(form: str) -> bool:
    return len(form) in (10, 11) and not form.startswith("55")


# -- reading the database -------------------------------------------------------------------


def _where(target: DatabaseUrl, data_dir: str | Path) -> str:
    """The database as messages name it: the data dir, or the PostgreSQL URL."""
    return target.redacted if target.is_postgres else str(data_dir)


def _open(target: DatabaseUrl, data_dir: str | Path) -> Any:
    if target.is_postgres:
        return connect(target)
    if not target.sqlite_path.exists():
        raise PatientNotFound(f"não há histórico em {data_dir}")
    conn = connect(target)
    conn.row_factory = sqlite3.Row
    return conn


def _tables(conn: Any) -> dict[str, list[tuple[str, str]]]:
    """Every user table and its (column, declared type), sorted by name (on PostgreSQL: the
    tables of the current schema, through the adapter's ``sqlite_master``)."""
    names = sorted(
        str(row[0])
        for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    )
    return {
        name: [(c[1], str(c[2]).upper()) for c in conn.execute(f'PRAGMA table_info("{name}")')]
        for name in names
        if name not in _SKIP_TABLES
    }


def _texts(columns: Sequence[tuple[str, str]]) -> list[str]:
    """The columns that may hold text (SQLite affinity: not integer or real; on PostgreSQL
    ``text``, ``bytea``, ``jsonb``...)."""
    numeric = ("INT", "REAL", "FLOA", "DOUB", "NUMERIC", "BOOL")
    return [name for name, kind in columns if not any(n in kind for n in numeric)]


def _as_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "ignore")
    if isinstance(value, dict | list):  # PostgreSQL's jsonb
        return json.dumps(value, ensure_ascii=False, default=str)
    return "" if value is None else str(value)


@dataclass
class _Finder:
    """Her ids, her words and a matcher called for every cell."""

    ids: PatientIds
    words: set[str] = field(default_factory=set)

    def mentions(self, value: Any) -> bool:
        if value is None or isinstance(value, int | float):
            return False
        text = _as_text(value)
        return self.ids.mentions(text) or any(word in text for word in self.words)

    def scrub(self, value: Any) -> Any:
        """``value`` without her: a text, or the strings (and keys) of a ``jsonb`` value;
        anything else (bytes, numbers) as it is."""
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if not isinstance(value, str):
            return value
        text = self.ids.scrub(value)
        for word in sorted(self.words, key=len, reverse=True):
            text = text.replace(word, REDACTED)
        return text


@dataclass
class _Row:
    """One row: the key :func:`_delete`/:func:`_update` name it by, and its cells."""

    key: Any  # SQLite: the rowid; PostgreSQL: the primary key's values (or the ctid)
    values: dict[str, Any]


def _select(
    conn: Any,
    table: str,
    where: str = "",
    params: Sequence[Any] = (),
    *,
    finder: _Finder | None = None,
    texts: Sequence[str] = (),
) -> list[_Row]:
    """The rows of ``table`` that ``where`` (SQLite's dialect) picks and, with ``finder``,
    whose ``texts`` columns mention her."""
    if is_postgres(conn):
        return _pg_select(conn, table, where, params, finder, texts)
    conditions = [f"({where})"] if where else []
    if finder is not None:
        conn.create_function("cf_mentions", 1, finder.mentions, deterministic=True)
        conditions.append(" OR ".join(f'cf_mentions("{name}")' for name in texts))
    sql = f'SELECT rowid AS _rowid, * FROM "{table}"'
    if conditions:
        sql += " WHERE " + " AND ".join(conditions)
    rows = []
    for row in conn.execute(sql, tuple(params)):
        values = dict(row)
        rows.append(_Row(values.pop("_rowid"), values))
    return rows


def _delete(conn: Any, table: str, keys: Sequence[Any]) -> None:
    if is_postgres(conn):
        _pg_delete(conn, table, keys)
        return
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        conn.execute(f'DELETE FROM "{table}" WHERE rowid IN ({marks})', chunk)


def _update(
    conn: Any, table: str, key: Any, changes: dict[str, Any], kinds: dict[str, str]
) -> None:
    if is_postgres(conn):
        _pg_update(conn, table, key, changes, kinds)
        return
    sets = ", ".join(f'"{name}" = ?' for name in changes)
    conn.execute(f'UPDATE "{table}" SET {sets} WHERE rowid = ?', [*changes.values(), key])


def _reclaim(conn: Any, tables: Iterable[str]) -> None:
    """After the commit: what was deleted or replaced leaves the database's files (see the
    module docstring). Best effort: another process may hold the WAL or lock a table."""
    names = sorted(set(tables))
    with contextlib.suppress(*DB_ERRORS):
        if is_postgres(conn):
            if names:
                listed = ", ".join(f'"{name}"' for name in names)
                conn.raw.execute(f"VACUUM (SKIP_LOCKED) {listed}")
        else:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


# PostgreSQL: rows are matched in Python (no SQL function can call _Finder) and named by their
# primary key; jsonb cells are written back as jsonb.


def _pg_key(conn: Any, table: str) -> tuple[str, ...]:
    """The primary key's columns of ``table`` (empty: none, rows are named by their ctid)."""
    rows = conn.raw.execute(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(quote_ident(%s)) "
        "AND i.indisprimary ORDER BY a.attnum",
        (table,),
    ).fetchall()
    return tuple(str(r[0]) for r in rows)


def _pg_match(conn: Any, table: str) -> str:
    key = _pg_key(conn, table)
    if not key:
        return "ctid = %s::tid"
    return " AND ".join(f'"{column}" = %s' for column in key)


def _pg_params(key: Any) -> list[Any]:
    return list(key) if isinstance(key, tuple) else [key]


def _pg_select(
    conn: Any,
    table: str,
    where: str,
    params: Sequence[Any],
    finder: _Finder | None,
    texts: Sequence[str],
) -> list[_Row]:
    from psycopg.rows import dict_row

    key = _pg_key(conn, table)
    head = "*" if key else "ctid::text AS _ctid, *"
    sql = f'SELECT {head} FROM "{table}"' + (f" WHERE {where}" if where else "")
    rows = []
    with conn.lock:
        cursor = conn.raw.cursor(row_factory=dict_row)
        for values in cursor.stream(translate(sql, bool(params)), tuple(params) or None):
            if finder is not None and not any(finder.mentions(values[n]) for n in texts):
                continue
            name = tuple(values[column] for column in key) if key else values.pop("_ctid")
            rows.append(_Row(name, values))
    return rows


def _pg_delete(conn: Any, table: str, keys: Sequence[Any]) -> None:
    if keys:
        match = _pg_match(conn, table)
        with conn.lock:
            conn.raw.cursor().executemany(
                f'DELETE FROM "{table}" WHERE {match}', [_pg_params(key) for key in keys]
            )


def _pg_update(
    conn: Any, table: str, key: Any, changes: dict[str, Any], kinds: dict[str, str]
) -> None:
    from psycopg.types.json import Json, Jsonb

    values = [
        Jsonb(value) if kinds[name] == "JSONB" else Json(value) if kinds[name] == "JSON" else value
        for name, value in changes.items()
    ]
    sets = ", ".join(f'"{name}" = %s' for name in changes)
    with conn.lock:
        conn.raw.execute(
            f'UPDATE "{table}" SET {sets} WHERE {_pg_match(conn, table)}',
            [*values, *_pg_params(key)],
        )


# -- finding her ----------------------------------------------------------------------------


def _chat_column(columns: Sequence[tuple[str, str]]) -> str | None:
    names = [name for name, _ in columns]
    return next((c for c in _CHAT_COLUMNS if c in names), None)


def _columns_of(conn: Any, table: str) -> set[str]:
    return {str(c[1]) for c in conn.execute(f'PRAGMA table_info("{table}")')}


def _widen(ids: PatientIds, chats: Iterable[str], numbers: Iterable[str]) -> PatientIds:
    """``ids`` plus more chat ids and numbers; a phone chat id brings every spelling of it."""
    all_chats = set(ids.chat_ids) | set(chats)
    all_numbers = set(ids.numbers) | set(numbers)
    for chat in list(all_chats):
        if chat.endswith(("@c.us", "@s.whatsapp.net")):
            with contextlib.suppress(PatientNotFound):
                more = patient_ids(chat)
                all_chats |= set(more.chat_ids)
                all_numbers |= set(more.numbers)
    for number in list(all_numbers):
        if number.startswith("55") and len(number) in (12, 13):
            more = patient_ids(number)
            all_chats |= set(more.chat_ids)
            all_numbers |= set(more.numbers)
    return PatientIds(tuple(sorted(all_chats)), tuple(sorted(all_numbers, key=len, reverse=True)))


def _identity_closure(conn: Any, ids: PatientIds) -> PatientIds:
    """Every id of the person behind ``ids``, through the identity tables.

    Whatever id she is named by (her ``@lid``, her phone chat id, her number in any form),
    the tables of :mod:`clinicflow.identity` give the identity her conversation is kept
    under, every other id ever seen for it, her phone and the lid lookups; repeated until
    nothing new is found (two identities of one person are both followed). Tables that are
    missing, or shaped otherwise, are skipped.
    """
    tables = {
        str(r[0]) for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    }
    wa_ids = "wa_ids" in tables and {"wa_id", "identity"} <= _columns_of(conn, "wa_ids")
    identities = "identities" in tables and {"identity", "phone"} <= _columns_of(conn, "identities")
    lookups = "lid_lookups" in tables and {"lid", "pn"} <= _columns_of(conn, "lid_lookups")
    while True:
        chats = set(ids.chat_ids)
        numbers: set[str] = set()
        for chat in ids.chat_ids:
            people = {chat}
            if wa_ids:
                people |= {
                    str(r[0])
                    for r in conn.execute("SELECT identity FROM wa_ids WHERE wa_id = ?", (chat,))
                }
                for person in list(people):
                    chats |= {
                        str(r[0])
                        for r in conn.execute(
                            "SELECT wa_id FROM wa_ids WHERE identity = ?", (person,)
                        )
                    }
            chats |= people
            if identities:
                for person in people:
                    numbers |= {
                        str(r[0])
                        for r in conn.execute(
                            "SELECT phone FROM identities WHERE identity = ? AND phone IS NOT NULL",
                            (person,),
                        )
                    }
            if lookups:
                for sql in (
                    "SELECT pn FROM lid_lookups WHERE lid = ? AND pn IS NOT NULL",
                    "SELECT lid FROM lid_lookups WHERE pn = ?",
                ):
                    chats |= {str(r[0]) for r in conn.execute(sql, (chat,))}
        if identities:
            for number in ids.numbers:
                chats |= {
                    str(r[0])
                    for r in conn.execute(
                        "SELECT identity FROM identities WHERE phone = ?", (number,)
                    )
                }
        wider = _widen(ids, chats, numbers)
        if wider == ids:
            return ids
        ids = wider


def _discover(conn: Any, ids: PatientIds) -> _Finder:
    """Her chat ids (every id of her identity, ``@lid`` ones linked to her number included)
    and her words."""
    ids = _identity_closure(conn, ids)
    finder = _Finder(ids)
    chats = set(ids.chat_ids)
    for table, columns in _tables(conn).items():
        texts = _texts(columns)
        if not texts:
            continue
        for row in _select(conn, table, finder=finder, texts=texts):
            for value in row.values.values():
                if isinstance(value, str) and re.fullmatch(r"\d+@lid", value):
                    chats.add(value)
    finder.ids = _identity_closure(conn, PatientIds(tuple(sorted(chats)), ids.numbers))
    chats = set(finder.ids.chat_ids)
    marks = ",".join("?" * len(chats))
    tables = _tables(conn)
    for table in ("messages", "inbox"):
        names = {name for name, _ in tables.get(table, ())}
        if not {"chat_id", "text"} <= names:
            continue
        sql = f"SELECT text FROM {table} WHERE chat_id IN ({marks})"
        if "direction" in names:
            sql += " AND direction = 'in'"
        for (text,) in conn.execute(sql, sorted(chats)):
            if isinstance(text, str) and len(text.strip()) >= MIN_WORDS and text != REDACTED:
                finder.words.add(text.strip())
    return finder


def _cell(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value)} bytes: estado interno da conversa>"
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _her_rows(conn: Any, finder: _Finder) -> dict[str, tuple[list[_Row], list[_Row]]]:
    """Per table: her own rows, and other rows that mention her."""
    found: dict[str, tuple[list[_Row], list[_Row]]] = {}
    chats = list(finder.ids.chat_ids)
    marks = ",".join("?" * len(chats))
    for table, columns in _tables(conn).items():
        chat_col = _chat_column(columns)
        texts = _texts(columns)
        own: list[_Row] = []
        if chat_col is not None:
            own = _select(conn, table, f'"{chat_col}" IN ({marks})', chats)
        if table == "apscheduler_jobs":
            own = _select(conn, table, f"id IN ({marks})", [f"followup:{chat}" for chat in chats])
        seen = {row.key for row in own}
        others: list[_Row] = []
        if texts:
            others = [
                row
                for row in _select(conn, table, finder=finder, texts=texts)
                if row.key not in seen
            ]
        if own or others:
            found[table] = (own, others)
    return found


def _spooled(data_dir: str | Path) -> None:
    if (Path(data_dir) / "inbox.spool").exists():
        raise StorageError(
            "há mensagens recebidas esperando em inbox.spool (o banco estava ocupado); "
            "tente de novo em alguns segundos"
        )


# -- export ---------------------------------------------------------------------------------


def export_patient(
    data_dir: str | Path, phone: str, *, now: datetime, database_url: str | None = None
) -> dict[str, Any]:
    """Everything the data directory holds about one patient, ready for ``json.dumps``.

    Args:
        data_dir: the data directory (its database: SQLite, or ``$CLINICFLOW_DATABASE_URL``).
        phone: her phone number in any form, or a chat id.
        now: the export's time (from the caller's clock).
        database_url: the clinic's database when it is not the data dir's default
            (:func:`clinicflow.database.resolve`).

    Raises:
        PatientNotFound: no data directory, or nothing about her in it.
        StorageError: the runner holds webhooks in ``inbox.spool`` that the database could
            not take yet (they may be hers); they are replayed within seconds, try again.
    """
    _spooled(data_dir)
    target = resolve(data_dir, database_url)
    conn = _open(target, data_dir)
    try:
        finder = _discover(conn, patient_ids(phone))
        tables: dict[str, list[dict[str, Any]]] = {}
        for table, (own, others) in _her_rows(conn, finder).items():
            tables[table] = [{k: _cell(v) for k, v in row.values.items()} for row in own + others]
    finally:
        conn.close()
    if not tables:
        raise PatientNotFound(f"nenhum dado de {phone} em {_where(target, data_dir)}")
    return {
        "patient": phone,
        "chat_ids": list(finder.ids.chat_ids),
        "exported_at": iso(now),
        "tables": tables,
    }


# -- erasure --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Erasure:
    """What :func:`erase_patient` removed: rows deleted and rows edited, per table."""

    chat_ids: tuple[str, ...]
    deleted: dict[str, int]
    scrubbed: dict[str, int]
    kept_binary: dict[str, int]  # other chats' internal state that mentions her (not editable)

    @property
    def total(self) -> int:
        return sum(self.deleted.values()) + sum(self.scrubbed.values())


def erase_patient(
    data_dir: str | Path,
    phone: str,
    *,
    now: datetime,
    dry_run: bool = False,
    database_url: str | None = None,
) -> Erasure:
    """Erase one patient from a data directory (see the module docstring).

    Args:
        data_dir: the data directory (the runner may be running: SQLite serialises writers,
            PostgreSQL locks the rows the erasure changes until it commits).
        phone: her phone number in any form, or a chat id.
        now: the erasure's time, for the anonymous ``erasures`` log.
        dry_run: only count what would be removed.
        database_url: as for :func:`export_patient`.

    Raises:
        PatientNotFound: no data directory, or nothing about her in it.
        StorageError: the runner holds webhooks in ``inbox.spool`` that the database could
            not take yet (they may be hers); they are replayed within seconds, try again.
    """
    _spooled(data_dir)
    target = resolve(data_dir, database_url)
    conn = _open(target, data_dir)
    try:
        if not is_postgres(conn):
            conn.execute("PRAGMA secure_delete = ON")
        with conn:
            finder = _discover(conn, patient_ids(phone))
            found = _her_rows(conn, finder)
            if not found:
                raise PatientNotFound(f"nenhum dado de {phone} em {_where(target, data_dir)}")
            deleted: dict[str, int] = {}
            scrubbed: dict[str, int] = {}
            binary: dict[str, int] = {}
            tables = _tables(conn)
            # The links between her ids go last: they are how she is found again.
            for table, (own, others) in sorted(
                found.items(), key=lambda item: item[0] in _LINK_TABLES
            ):
                kinds = dict(tables[table])
                doomed = [row.key for row in own]
                edits: list[tuple[Any, dict[str, Any]]] = []
                for row in others:
                    if table not in _STATE_TABLES:
                        doomed.append(row.key)
                        continue
                    changes = _scrubbed(finder, row.values)
                    if changes:
                        edits.append((row.key, changes))
                    else:
                        binary[table] = binary.get(table, 0) + 1
                if doomed:
                    deleted[table] = len(doomed)
                if edits:
                    scrubbed[table] = len(edits)
                if dry_run:
                    continue
                _delete(conn, table, doomed)
                for key, changes in edits:
                    _update(conn, table, key, changes, kinds)
            if not dry_run:
                _log_erasure(conn, now, deleted, scrubbed)
        if not dry_run:
            _reclaim(conn, [*deleted, *scrubbed])
    finally:
        conn.close()
    return Erasure(finder.ids.chat_ids, deleted, scrubbed, binary)


def _scrubbed(finder: _Finder, values: dict[str, Any]) -> dict[str, Any]:
    """The cells of another chat's row that mention her, without her (texts and ``jsonb``;
    bytes cannot be edited and stay)."""
    changes: dict[str, Any] = {}
    for name, value in values.items():
        if isinstance(value, str | dict | list) and finder.mentions(value):
            clean = finder.scrub(value)
            if clean != value:
                changes[name] = clean
    return changes


def _log_erasure(
    conn: Any, now: datetime, deleted: dict[str, int], scrubbed: dict[str, int]
) -> None:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS erasures (id INTEGER PRIMARY KEY, at TEXT NOT NULL, "
        "conversations INTEGER NOT NULL, rows TEXT NOT NULL)"
    )
    counts = {"deleted": deleted, "scrubbed": scrubbed}
    conn.execute(
        "INSERT INTO erasures (at, conversations, rows) VALUES (?, ?, ?)",
        (iso(now), deleted.get("conversations", 0), json.dumps(counts, sort_keys=True)),
    )


# -- retention ------------------------------------------------------------------------------


def redact_expired(
    data_dir: str | Path, retention_days: int, *, now: datetime, database_url: str | None = None
) -> int:
    """Replace message texts older than ``retention_days`` by :data:`REDACTED`.

    Covers the transcript (``messages``), the runner's ``inbox`` and ``outbox`` (finished rows
    only), the briefs of resolved hand-offs and the workspace's copies of hand-off notices.
    Conversations, leads and events stay, so reports keep their figures. ``database_url``: as
    for :func:`export_patient`.

    Returns:
        How many texts were redacted.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    target = resolve(data_dir, database_url)
    if not target.is_postgres and not target.sqlite_path.exists():
        return 0
    cutoff = now - timedelta(days=retention_days)
    stamp = cutoff.timestamp()
    statements = (
        ("messages", "UPDATE messages SET text = ? WHERE at < ? AND text <> ?",
         (REDACTED, iso(cutoff), REDACTED)),
        ("handoffs", "UPDATE handoffs SET brief = ? WHERE status = 'resolved' AND at < ? "
         "AND brief <> ?", (json.dumps(REDACTED), iso(cutoff), json.dumps(REDACTED))),
        ("inbox", "UPDATE inbox SET text = ?, meta = '{}' WHERE received_at < ? "
         "AND status NOT IN ('received', 'processing') AND text <> ?", (REDACTED, stamp, REDACTED)),
        ("outbox", "UPDATE outbox SET text = ? WHERE created_at < ? "
         "AND status IN ('sent', 'failed') AND text <> ?", (REDACTED, stamp, REDACTED)),
    )  # fmt: skip
    conn = connect(target)
    try:
        if not is_postgres(conn):
            conn.execute("PRAGMA secure_delete = ON")
        tables = {str(row[0]) for row in conn.execute("SELECT name FROM sqlite_master")}
        counts: dict[str, int] = {}
        with conn:
            for table, sql, params in statements:
                if table in tables:
                    counts[table] = conn.execute(sql, params).rowcount
            from clinicflow.staff.assignment import redact_notices

            counts["handoff_notices"] = redact_notices(conn, stamp, REDACTED)
        if is_postgres(conn):
            _reclaim(conn, [table for table, count in counts.items() if count > 0])
    finally:
        conn.close()
    return sum(counts.values())
