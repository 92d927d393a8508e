"""Schema versions of ``clinicflow.db``: forward migrations at start, newer data refused.

The database's version is SQLite's ``PRAGMA user_version`` (PostgreSQL: the one-row table
``clinicflow_schema``, :func:`clinicflow.database.user_version`); :data:`SCHEMA_VERSION` is the one
this code writes. :func:`migrate` runs when an engine or a runner opens a data directory:

- the same version: nothing to do (one read);
- older (0 is every file from before versions): each step from the file's version up to
  :data:`SCHEMA_VERSION` runs in order, then the version is written;
- newer: :class:`SchemaTooNew`, one line saying which versions, and nothing is touched.

Migrations run under the data directory's build lock (:func:`clinicflow.datadir.build_lock`;
on PostgreSQL an advisory lock, :func:`clinicflow.database.migration_lock`), so two processes
opening a fresh or an old data directory at once take turns; every step is
idempotent (``IF NOT EXISTS``, missing columns only), so a step cut short by a crash simply
runs again. Steps::

    1   the history and checkpoint tables, and every column a file from before versions lacks
        in the tables it has (e.g. an inbox without ``wa_key``, an outbox without
        ``hold_until`` or ``client_id``); the runner creates its own tables where it runs
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from clinicflow.database import DB_ERRORS, migration_lock, set_user_version, user_version
from clinicflow.errors import StorageError

SCHEMA_VERSION = 1

__all__ = ["SCHEMA_VERSION", "SchemaTooNew", "add_missing_columns", "migrate", "version_of"]


class SchemaTooNew(StorageError):
    """The data directory was written by a newer clinicflow (``found`` > ``known``)."""

    exit_code = 3

    def __init__(self, path: Path, found: int, known: int) -> None:
        super().__init__(
            f"{path} foi gravado por um clinicflow mais novo (versão do esquema {found}; este "
            f"conhece até a {known}): atualize o clinicflow, ou restaure uma cópia feita por "
            "esta versão"
        )
        self.found = found
        self.known = known


def version_of(conn: Any) -> int:
    return user_version(conn)


def migrate(conn: Any, data_dir: str | Path) -> int:
    """Bring the database of ``conn`` to :data:`SCHEMA_VERSION`; returns the version found.

    Raises:
        SchemaTooNew: the file is newer than this code.
        StorageError: a step failed (the version is left where it was).
    """
    path = Path(data_dir)
    found = version_of(conn)
    if found == SCHEMA_VERSION:
        return found
    if found > SCHEMA_VERSION:
        raise SchemaTooNew(path, found, SCHEMA_VERSION)
    with migration_lock(conn, path):
        found = version_of(conn)  # another process may have done it meanwhile
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(path, found, SCHEMA_VERSION)
        try:
            for version in range(found + 1, SCHEMA_VERSION + 1):
                _STEPS[version](conn)
                with conn:
                    set_user_version(conn, version)
                conn.commit()
        except DB_ERRORS as exc:
            raise StorageError(f"cannot migrate {path} to schema {SCHEMA_VERSION}: {exc}") from exc
    return found


def add_missing_columns(conn: Any, create_sql: str) -> list[str]:
    """Add to existing tables the columns ``create_sql`` declares and they lack.

    ``create_sql`` holds ``CREATE TABLE`` statements; each column is added with its declared
    type and default (SQLite cannot add a NOT NULL column without one: such a column is added
    nullable). Returns ``table.column`` for each column added.
    """
    model = sqlite3.connect(":memory:")
    try:
        model.executescript(create_sql)
        tables = [r[0] for r in model.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        added: list[str] = []
        for table in tables:
            have = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
            if not have:
                continue  # not created here (yet): CREATE TABLE IF NOT EXISTS makes it whole
            for _, name, kind, notnull, default, _pk in model.execute(
                f'PRAGMA table_info("{table}")'
            ):
                if name in have:
                    continue
                clause = f'"{name}" {kind}'
                if default is not None:
                    clause += f" {'NOT NULL ' if notnull else ''}DEFAULT {default}"
                conn.execute(f'ALTER TABLE "{table}" ADD COLUMN {clause}')
                added.append(f"{table}.{name}")
        return added
    finally:
        model.close()


def _baseline(conn: Any) -> None:
    from clinicflow import identity, inbox, outbox, storage
    from clinicflow.checkpoints import setup_checkpoints

    storage.create_history_tables(conn)
    setup_checkpoints(conn)
    # The runner's tables exist only where a runner ran (reports tell a library's data dir
    # by their absence): completed where they are, created by the runner where not.
    for module_schema in (identity.SCHEMA, inbox.SCHEMA, outbox.SCHEMA, _RUNNER_TABLES):
        add_missing_columns(conn, module_schema)
    with conn:
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'inbox'").fetchone():
            inbox.ensure_schema(conn)


_RUNNER_TABLES = """
CREATE TABLE IF NOT EXISTS human_activity (chat_id TEXT PRIMARY KEY, at REAL);
CREATE TABLE IF NOT EXISTS erasures (id INTEGER PRIMARY KEY, at TEXT NOT NULL,
    conversations INTEGER NOT NULL, rows TEXT NOT NULL);
"""

_STEPS: dict[int, Callable[[Any], None]] = {1: _baseline}
