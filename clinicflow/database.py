"""The storage seam: one clinic's tables in SQLite (the default) or in PostgreSQL.

Where the data lives is a URL: ``CLINICFLOW_DATABASE_URL`` (or ``--database-url``) set to
``postgresql://user@host:port/db`` puts every table in PostgreSQL; unset (or
``sqlite:///path``) keeps ``clinicflow.db`` in the data directory, as always.

:func:`connect` returns a connection with the subset of :class:`sqlite3.Connection` the
project uses (``execute``, ``executemany``, ``executescript``, ``commit``, ``rollback``,
``with conn:`` for one transaction). For SQLite that is :class:`sqlite3.Connection` itself;
for PostgreSQL it is :class:`PgConnection`, a thin adapter over psycopg 3 that rewrites the
few SQLite idioms the modules write (``?`` placeholders, ``INSERT OR IGNORE``/``REPLACE``,
``INTEGER PRIMARY KEY``, ``PRAGMA table_info``, ``sqlite_master``). Every non-portable
statement lives here (:func:`translate`) and nowhere else: the modules above keep writing
one dialect, and both backends run the same tests.

A PostgreSQL connection runs in autocommit; ``with conn:`` opens a transaction (nested
blocks join the outer one) and commits it at the end, or rolls it back on an exception,
exactly what the modules rely on from :mod:`sqlite3`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol
from urllib.parse import urlsplit

import psycopg
from psycopg import sql as pgsql

from clinicflow.errors import DatabaseUnavailable, StorageError

__all__ = [
    "DB_ERRORS",
    "ENV",
    "Connection",
    "DatabaseUrl",
    "PgConnection",
    "connect",
    "is_postgres",
    "resolve",
    "translate",
    "unreachable",
]

ENV = "CLINICFLOW_DATABASE_URL"
DB_NAME = "clinicflow.db"

#: Errors either backend raises for a failed statement.
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)


class Cursor(Protocol):
    rowcount: int

    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """What clinicflow uses of a database connection (sqlite3's names)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...
    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any: ...
    def executescript(self, script: str, /) -> Any: ...
    def commit(self) -> None: ...
    def rollback(self) -> None: ...
    def close(self) -> None: ...
    def __enter__(self) -> Any: ...
    def __exit__(self, *exc: Any) -> Any: ...


@dataclass(frozen=True)
class DatabaseUrl:
    """Where a clinic's tables live."""

    url: str

    @property
    def kind(self) -> str:
        return "postgresql" if self.url.startswith(("postgresql:", "postgres:")) else "sqlite"

    @property
    def is_postgres(self) -> bool:
        return self.kind == "postgresql"

    @property
    def sqlite_path(self) -> Path:
        if self.is_postgres:
            raise StorageError(f"{self.redacted} is not a SQLite database")
        return Path(self.url.removeprefix("sqlite:///").removeprefix("sqlite://"))

    @property
    def sqlalchemy_url(self) -> str:
        """The same database for SQLAlchemy (APScheduler's job store)."""
        if self.is_postgres:
            return "postgresql+psycopg://" + self.url.split("://", 1)[1]
        return f"sqlite:///{self.sqlite_path}"

    @property
    def redacted(self) -> str:
        """The URL without its password, wherever it is written (``user:pw@``, a
        ``password=`` parameter), for messages and logs."""
        text = re.sub(r"(?i)(password=)[^&\s]*", r"\1***", self.url)
        try:
            password = urlsplit(text).password
        except ValueError:  # not a well-formed URL: hide whatever sits before the host
            return re.sub(r"://[^@/]*@", "://***@", text)
        if password:
            return text.replace(f":{password}@", ":***@", 1)
        return text


def resolve(data_dir: str | Path, url: str | None = None) -> DatabaseUrl:
    """The database of a data directory: ``url``, else ``$CLINICFLOW_DATABASE_URL``, else
    ``clinicflow.db`` in ``data_dir``."""
    chosen = url or os.environ.get(ENV) or ""
    if not chosen:
        return DatabaseUrl(f"sqlite:///{Path(data_dir) / DB_NAME}")
    if chosen.startswith(("postgresql://", "postgres://", "sqlite:///")):
        try:
            urlsplit(chosen).port  # noqa: B018 - parses host and port: a malformed URL fails here
        except ValueError as exc:
            raise StorageError(
                f"a URL do banco {DatabaseUrl(chosen).redacted} não é válida: {exc}"
            ) from None
        return DatabaseUrl(chosen)
    scheme = chosen.split("://", 1)[0] if "://" in chosen else "(sem esquema)"
    raise StorageError(
        f"URL de banco não suportada ({scheme[:20]}): use postgresql://… ou sqlite:///… "
        "(uma URL, não 'host=… password=…')"
    )


def connect(target: DatabaseUrl) -> Any:
    """Open a connection the way every clinicflow component does.

    SQLite: WAL, ``synchronous=NORMAL``, a 30 s busy timeout. PostgreSQL: autocommit, with
    transactions opened by ``with conn:`` (see :class:`PgConnection`).

    Raises:
        StorageError: the SQLite file's directory cannot be created (a file in the way,
            permissions).
    """
    if target.is_postgres:
        return PgConnection(target.url)
    path = target.sqlite_path
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


def unreachable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot be used right now, rather than that a
    statement was wrong: SQLite's write lock held by another process ("locked", "busy"), or
    PostgreSQL's connection lost or refused (the server restarting, down, out of reach).
    Such a failure is worth waiting out (the runner spools webhooks meanwhile)."""
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "locked" in text or "busy" in text
    return isinstance(exc, psycopg.OperationalError | DatabaseUnavailable)


def is_postgres(conn: Any) -> bool:
    return isinstance(conn, PgConnection)


# --- SQL rewriting -------------------------------------------------------------------------

_STRING = re.compile(r"'(?:[^']|'')*'")
_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+", re.IGNORECASE)
_INSERT_TARGET = re.compile(r'^\s*INSERT\s+INTO\s+"?(\w+)"?\s*\(([^)]*)\)', re.IGNORECASE)
_PRAGMA_TABLE_INFO = re.compile(r"""^\s*PRAGMA\s+table_info\(\s*["']?(\w+)["']?\s*\)\s*$""", re.I)
_PRAGMA = re.compile(r"^\s*PRAGMA\b", re.IGNORECASE)
_DDL = (
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY(\s+AUTOINCREMENT)?\b", re.I),
     "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
    (re.compile(r"\s+COLLATE\s+NOCASE\b", re.I), ""),
)  # fmt: skip
_SQLITE_MASTER = (
    "(SELECT 'table' AS type, table_name AS name, table_name AS tbl_name "
    "FROM information_schema.tables WHERE table_schema = current_schema() "
    "UNION ALL SELECT 'index', indexname, tablename FROM pg_indexes "
    "WHERE schemaname = current_schema()) AS sqlite_master"
)
_TABLE_INFO = (
    "SELECT c.ordinal_position - 1, c.column_name, c.data_type, "
    "CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END, c.column_default, "
    "CASE WHEN EXISTS (SELECT 1 FROM information_schema.key_column_usage k "
    "JOIN information_schema.table_constraints t ON t.constraint_name = k.constraint_name "
    "AND t.table_schema = k.table_schema WHERE t.constraint_type = 'PRIMARY KEY' "
    "AND k.table_schema = c.table_schema AND k.table_name = c.table_name "
    "AND k.column_name = c.column_name) THEN 1 ELSE 0 END "
    "FROM information_schema.columns c WHERE c.table_schema = current_schema() "
    "AND c.table_name = '{table}' ORDER BY c.ordinal_position"
)


def _outside_strings(sql: str, change: Any) -> str:
    """Apply ``change`` to the parts of ``sql`` outside single-quoted literals."""
    out: list[str] = []
    last = 0
    for match in _STRING.finditer(sql):
        out.append(change(sql[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(change(sql[last:]))
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def translate(sql: str, with_params: bool = True, pk: tuple[str, ...] | None = None) -> str:
    """One SQLite statement (or script) as PostgreSQL runs it.

    Args:
        sql: the statement in SQLite's dialect (as the modules write it).
        with_params: parameters follow (``?`` become ``%s`` and ``%`` is escaped).
        pk: the conflict target of an ``INSERT OR REPLACE`` (the table's primary key).
    """
    table_info = _PRAGMA_TABLE_INFO.match(sql)
    if table_info:
        return _TABLE_INFO.format(table=table_info.group(1))
    if _PRAGMA.match(sql):
        return "SELECT NULL WHERE FALSE"  # SQLite tuning (journal, sync, timeouts): none here
    mode = None
    head = _INSERT_OR.match(sql)
    if head:
        mode = head.group(1).upper()
        sql = "INSERT INTO " + sql[head.end() :]

    # Whether the statement defines columns is decided on the whole of it: a column's
    # DEFAULT 'text' splits it in parts, and the types after it are the table's too.
    defines_columns = re.search(r"\b(CREATE\s+TABLE|ADD\s+COLUMN)\b", sql, re.I) is not None

    def rewrite(part: str) -> str:
        if with_params:
            part = part.replace("%", "%%").replace("?", "%s")
        part = part.replace("sqlite_master", _SQLITE_MASTER)
        if defines_columns:
            for pattern, replacement in _DDL:
                part = pattern.sub(replacement, part)
        return part

    sql = _outside_strings(sql, rewrite).rstrip().rstrip(";")
    if mode == "IGNORE":
        sql += " ON CONFLICT DO NOTHING"
    elif mode == "REPLACE":
        target = _INSERT_TARGET.match(sql)
        if target is None or not pk:
            raise StorageError(f"cannot translate INSERT OR REPLACE: {sql[:80]}")
        columns = [c.strip().strip('"') for c in target.group(2).split(",")]
        updates = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in columns if c not in pk)
        conflict = ", ".join(f'"{c}"' for c in pk)
        sql += f" ON CONFLICT ({conflict}) " + (
            f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        )
    return sql


# --- the PostgreSQL adapter ----------------------------------------------------------------


class PgCursor:
    """A psycopg cursor with sqlite3's manners (``fetchone`` is None when nothing came)."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor
        self.rowcount = cursor.rowcount
        self.lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._cursor.description

    def fetchone(self) -> Any:
        if self._cursor.description is None:
            return None
        return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        if self._cursor.description is None:
            return []
        return self._cursor.fetchall()

    def fetchmany(self, size: int = 1) -> list[Any]:
        if self._cursor.description is None:
            return []
        return self._cursor.fetchmany(size)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


def _lost(conn: psycopg.Connection[Any]) -> bool:
    """Whether a connection was closed or lost (the server restarted, a failover, the network)."""
    return conn.closed or bool(conn.broken)


def _reopened(conn: psycopg.Connection[Any], url: str) -> psycopg.Connection[Any]:
    """``conn``, or a new autocommit connection to ``url`` in its place when it was lost.

    Raises:
        psycopg.OperationalError: the server cannot be reached.
    """
    if not _lost(conn):
        return conn
    conn.close()
    return psycopg.connect(url, autocommit=True)


class PgConnection:
    """A psycopg 3 connection that speaks to clinicflow's modules like :mod:`sqlite3`.

    Thread-safe like the SQLite connections it stands for: statements of different threads
    are serialised; a ``with conn:`` block belongs to the thread that opened it, and other
    threads wait for its end before they run a statement.
    """

    def __init__(self, url: str) -> None:
        try:
            self.raw = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise StorageError(f"cannot connect to {DatabaseUrl(url).redacted}: {exc}") from exc
        _create_missing_schema(self.raw)
        self.url = url
        self.lock = threading.RLock()
        self._depth = 0
        self._tx: Any = None
        self._pks: dict[str, tuple[str, ...]] = {}

    def live(self) -> psycopg.Connection[Any]:
        """The connection, opened again first when the last one was lost (the server
        restarted, a failover, the network) and no transaction of ours is open on it.

        Raises:
            psycopg.OperationalError: the server cannot be reached (callers see a database
                error, as for any failed statement, and try again later).
        """
        if self._depth == 0:
            self.raw = _reopened(self.raw, self.url)
        return self.raw

    # sqlite3's surface

    def execute(self, sql: str, parameters: Any = (), /) -> PgCursor:
        with self.lock:
            params = _params(parameters)
            query = translate(sql, params is not None, self._pk_for(sql))
            cursor = self.live().cursor()
            cursor.execute(query, params)
            return PgCursor(cursor)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> PgCursor:
        rows = [_params(p) or () for p in parameters]
        with self.lock:
            cursor = self.live().cursor()
            if rows:
                query = translate(sql, True, self._pk_for(sql))
                cursor.executemany(query, rows)
            return PgCursor(cursor)

    def executescript(self, script: str, /) -> PgCursor:
        with self.lock:
            cursor = self.live().cursor()
            cursor.execute(translate(script, False))
            return PgCursor(cursor)

    def commit(self) -> None:
        """Nothing to do: outside ``with conn:`` every statement commits by itself."""

    def rollback(self) -> None:
        """Nothing to do (see :meth:`commit`)."""

    def close(self) -> None:
        self.raw.close()

    def __del__(self) -> None:
        # Like sqlite3 (Python 3.11), a connection dropped unclosed closes quietly.
        raw = getattr(self, "raw", None)
        if raw is not None and not raw.closed:
            raw.close()

    def __enter__(self) -> PgConnection:
        self.lock.acquire()
        try:
            if self._depth == 0:
                self._tx = self.live().transaction()
                self._tx.__enter__()
        except BaseException:
            self.lock.release()
            raise
        self._depth += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._depth -= 1
            if self._depth == 0:
                tx, self._tx = self._tx, None
                tx.__exit__(exc_type, exc, tb)
        finally:
            self.lock.release()

    # helpers

    def _pk_for(self, sql: str) -> tuple[str, ...] | None:
        if not re.match(r"^\s*INSERT\s+OR\s+REPLACE", sql, re.I):
            return None
        target = _INSERT_TARGET.match(_INSERT_OR.sub("INSERT INTO ", sql, count=1))
        if target is None:
            return None
        table = target.group(1)
        if table not in self._pks:
            rows = (
                self.live()
                .execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                    "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                    "WHERE i.indrelid = to_regclass(%s) AND i.indisprimary",
                    (table,),
                )
                .fetchall()
            )
            self._pks[table] = tuple(str(r[0]) for r in rows)
        return self._pks[table]


def _create_missing_schema(raw: psycopg.Connection[Any]) -> None:
    """Create the schema a URL's ``search_path`` names when it does not exist yet (one clinic
    of several keeps its tables in its own schema, :mod:`clinicflow.clinics`)."""
    if raw.execute("SELECT current_schema()").fetchone() != (None,):
        return
    first = str(raw.execute("SHOW search_path").fetchone()[0]).split(",")[0].strip()  # type: ignore[index]
    schema = first.strip('"')
    if schema and schema != "$user":
        raw.execute(pgsql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
            pgsql.Identifier(schema)))  # fmt: skip


def _params(parameters: Any) -> Sequence[Any] | dict[str, Any] | None:
    if parameters is None:
        return None
    if isinstance(parameters, dict):
        return parameters or None
    values = tuple(parameters)
    return values or None


# --- schema versions and the migration lock ------------------------------------------------

_VERSION_TABLE = "clinicflow_schema"


def user_version(conn: Any) -> int:
    """The schema version written in the database (0: none yet).

    SQLite keeps it in ``PRAGMA user_version``; PostgreSQL in a one-row table
    ``clinicflow_schema``.
    """
    if not is_postgres(conn):
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    row = conn.raw.execute(f"SELECT to_regclass('{_VERSION_TABLE}') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return 0
    row = conn.raw.execute(f"SELECT MAX(version) FROM {_VERSION_TABLE}").fetchone()
    return int(row[0] or 0) if row else 0


def set_user_version(conn: Any, version: int) -> None:
    """Write the schema version (inside the caller's transaction on PostgreSQL)."""
    if not is_postgres(conn):
        conn.execute(f"PRAGMA user_version = {int(version)}")
        return
    conn.raw.execute(f"CREATE TABLE IF NOT EXISTS {_VERSION_TABLE} (version INTEGER NOT NULL)")
    conn.raw.execute(f"DELETE FROM {_VERSION_TABLE}")
    conn.raw.execute(f"INSERT INTO {_VERSION_TABLE} (version) VALUES (%s)", (int(version),))


@contextmanager
def migration_lock(conn: Any, data_dir: str | Path) -> Iterator[None]:
    """Held while the schema is brought up to date: one process at a time.

    SQLite: the data directory's build lock (a file lock). PostgreSQL: a session advisory
    lock keyed by the schema, so runners on several machines take turns too.
    """
    if not is_postgres(conn):
        from clinicflow.datadir import build_lock

        with build_lock(Path(data_dir)):
            yield
        return
    key = "SELECT hashtext(current_schema() || ':clinicflow-migrate')"
    with conn.lock:
        # Polled, never waited on in a statement: LangGraph's migration builds its indexes
        # CONCURRENTLY, which waits for every open transaction, a blocked lock call included.
        while not conn.raw.execute(f"SELECT pg_try_advisory_lock(({key}))").fetchone()[0]:
            time.sleep(0.05)
        try:
            yield
        finally:
            conn.raw.execute(f"SELECT pg_advisory_unlock(({key}))")


def reset_identity(conn: Any, table: str, key: Sequence[str]) -> None:
    """After rows were written with their ids: move PostgreSQL's identity sequence of
    ``table``'s one-column integer key past the largest id (SQLite needs nothing)."""
    if not is_postgres(conn) or len(key) != 1:
        return
    column = key[0]
    row = conn.raw.execute("SELECT pg_get_serial_sequence(%s, %s)", (table, column)).fetchone()
    if not row or not row[0]:
        return
    conn.raw.execute(
        f'SELECT setval(%s, COALESCE((SELECT MAX("{column}") FROM "{table}"), 0) + 1, false)',
        (row[0],),
    )


class ChatOwnership:
    """Which runner works on a chat, when several runners share one PostgreSQL database.

    A chat is owned through a session advisory lock (``pg_try_advisory_lock`` on a key made
    of the schema and the chat id) held on this object's own connection while the runner
    processes the chat's inbox or sends its outbox; another runner's try fails and leaves the
    chat alone (its rows are in the shared tables: the owner sees them). When a runner dies,
    PostgreSQL closes its session and every lock it held goes with it: the next sweep of any
    other runner takes the chats over. Locks of one session stack, so the processor and the
    sender of one runner can both hold a chat.

    On SQLite (one runner per data dir, an OS lock) every chat is always owned.
    """

    def __init__(self, target: DatabaseUrl) -> None:
        self.target = target
        self._conn: psycopg.Connection[Any] | None = None
        if target.is_postgres:
            try:
                self._conn = psycopg.connect(target.url, autocommit=True)
            except psycopg.Error as exc:
                raise StorageError(f"cannot connect to {target.redacted}: {exc}") from exc

    _KEY = "hashtext(current_schema() || ':chat:' || %s)"

    def acquire(self, chat_id: str) -> bool:
        """Own the chat now (True), or learn that another runner does (False); never waits.

        A lost connection (the server restarted: every lock of the old session went with it)
        is opened again; when the server cannot be reached the answer is False (not owned
        now), and the caller looks again later.
        """
        if self._conn is None:
            return True
        try:
            row = self._live().execute(f"SELECT pg_try_advisory_lock({self._KEY})", (chat_id,))
            found = row.fetchone()
        except psycopg.OperationalError:
            return False
        return bool(found and found[0])

    def release(self, chat_id: str) -> None:
        if self._conn is None or _lost(self._conn):
            return  # the session, and every lock it held, is gone already
        with contextlib.suppress(psycopg.OperationalError):
            self._conn.execute(f"SELECT pg_advisory_unlock({self._KEY})", (chat_id,))

    def _live(self) -> psycopg.Connection[Any]:
        assert self._conn is not None
        self._conn = _reopened(self._conn, self.target.url)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()  # every chat still held goes with the session
