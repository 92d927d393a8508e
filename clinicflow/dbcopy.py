"""``clinicflow db copy``: every table of one clinic's database into another, idempotently.

The usual move is an existing clinic from its SQLite file to PostgreSQL
(``--from sqlite:///.clinicflow/clinicflow.db --to postgresql://…``); any direction works.

- The target is migrated first (:class:`~clinicflow.storage.Store`: history and checkpoint
  tables), and every runner, staff and workspace table the source has is created on it from
  its module's own ``CREATE TABLE`` script (:data:`TABLE_SCRIPTS`).
- Rows go over as they are, primary keys included, with ``INSERT OR IGNORE`` (on PostgreSQL
  ``ON CONFLICT DO NOTHING``): a second copy adds nothing, an interrupted one resumes. A table
  without a primary key is copied only into an empty target table. PostgreSQL's identity
  sequences are moved past the copied ids afterwards.
- Checkpoints have a different layout in each backend's LangGraph saver; they are read with
  the source's saver and written with the target's (``put`` and ``put_writes``), so the
  conversations continue where they were on the other side.
- APScheduler's ``apscheduler_jobs`` (pickled jobs) are copied row by row like the rest.

Returns one :class:`TableCopy` per table: rows in the source, rows added to the target, and
rows in conflict: a row whose id the target already gives to another row (both sides were
written after an earlier copy). Those are not copied, and ``clinicflow db copy`` says so and
exits 1: two histories that went on separately are not merged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clinicflow import database
from clinicflow.database import DatabaseUrl
from clinicflow.errors import StorageError

__all__ = ["TableCopy", "copy_database", "table_scripts"]

BATCH = 500
_CHECKPOINT_TABLES = frozenset(
    {"checkpoints", "writes", "checkpoint_blobs", "checkpoint_writes", "checkpoint_migrations"}
)
_SKIP = frozenset({"clinicflow_schema"})


@dataclass(frozen=True)
class TableCopy:
    """What one table's copy did."""

    table: str
    source_rows: int
    added: int
    note: str = ""
    conflicts: int = 0  # source rows whose key the target holds with other values


def table_scripts() -> list[str]:
    """The ``CREATE TABLE`` scripts of the tables outside the history (runner, staff)."""
    from clinicflow import identity, inbox, outbox, schema
    from clinicflow.staff import accounts, assignment, audit, sessions

    return [
        identity.SCHEMA,
        inbox.SCHEMA,
        outbox.SCHEMA,
        schema._RUNNER_TABLES,
        accounts._SCHEMA,
        sessions._SCHEMA,
        assignment._SCHEMA,
        audit._SCHEMA,
    ]


def _tables(conn: Any) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return sorted(str(r[0]) for r in rows)


def _columns(conn: Any, table: str) -> dict[str, tuple[str, bool]]:
    """Column name -> (declared type, part of the primary key)."""
    return {
        str(r[1]): (str(r[2]).lower(), bool(r[5]))
        for r in conn.execute(f'PRAGMA table_info("{table}")')
    }


def _coerce(value: Any, kind: str) -> Any:
    """A SQLite value (dynamically typed) as the target column's declared type wants it."""
    if value is None:
        return None
    if "int" in kind:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        return value
    if kind in ("text", "character varying") and not isinstance(value, str):
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if kind == "bytea" and isinstance(value, str):
        return value.encode("utf-8")
    return value


def _create_missing(target: Any, source_tables: Sequence[str]) -> None:
    """The runner's and staff's tables the source has, created on the target."""
    from clinicflow import inbox

    have = set(_tables(target))
    for script in table_scripts():
        declared = {
            line.split("EXISTS", 1)[1].split("(", 1)[0].strip()
            for line in script.splitlines()
            if "CREATE TABLE IF NOT EXISTS" in line
        }
        if declared & set(source_tables) and not declared <= have:
            with target:
                target.executescript(script)
    if "inbox" in source_tables:
        inbox.ensure_schema(target)


def _copy_table(source: Any, target: Any, table: str) -> TableCopy:
    src_cols = _columns(source, table)
    dst_cols = _columns(target, table)
    names = [c for c in src_cols if c in dst_cols]
    total = int(source.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    if not names:
        return TableCopy(table, total, 0, "no common columns")
    keyed = any(pk for _, pk in dst_cols.values())
    before = int(target.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    if not keyed and before:
        return TableCopy(table, total, 0, "no primary key and not empty: left as it is")
    quoted = ", ".join(f'"{c}"' for c in names)
    marks = ", ".join("?" for _ in names)
    insert = f'INSERT OR IGNORE INTO "{table}" ({quoted}) VALUES ({marks})'
    kinds = [dst_cols[c][0] for c in names]
    keys = [c for c, (_, pk) in dst_cols.items() if pk]
    by_id = keys == ["id"] and "id" in names  # a row id: another row may hold it there
    conflicts = 0
    cursor = source.execute(f'SELECT {quoted} FROM "{table}"')
    while rows := cursor.fetchmany(BATCH):
        batch = [tuple(_coerce(v, k) for v, k in zip(row, kinds, strict=True)) for row in rows]
        if by_id and before:
            conflicts += _conflicts(target, table, names, batch)
        with target:
            target.executemany(insert, batch)
    database.reset_identity(target, table, keys)
    after = int(target.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0])
    note = (
        f"{conflicts} em conflito: o destino já usa esses ids para outras linhas"
        if conflicts
        else ""
    )
    return TableCopy(table, total, after - before, note, conflicts)


def _conflicts(target: Any, table: str, names: list[str], batch: list[tuple[Any, ...]]) -> int:
    """Rows of ``batch`` whose id the target already holds with other values: written on both
    sides after an earlier copy, they cannot both be kept under one id (and are not copied)."""
    at = names.index("id")
    wanted = {row[at]: row for row in batch}
    marks = ", ".join("?" for _ in wanted)
    quoted = ", ".join(f'"{c}"' for c in names)
    found = target.execute(
        f'SELECT {quoted} FROM "{table}" WHERE id IN ({marks})', tuple(wanted)
    ).fetchall()
    return sum(1 for row in found if _plain(row) != _plain(wanted[row[at]]))


def _plain(row: Sequence[Any]) -> tuple[str, ...]:
    """A row compared across backends: values as text (a float, a JSON text, bytes alike)."""
    return tuple("" if v is None else bytes(v).hex() if isinstance(v, bytes | memoryview)
                 else str(v) for v in row)  # fmt: skip


def _copy_checkpoints(source_store: Any, target_store: Any) -> TableCopy:
    """Each thread's checkpoints through the savers (the layouts differ per backend)."""
    from clinicflow.checkpoints import PgTurnSaver, TurnSaver

    def saver(store: Any) -> Any:
        return PgTurnSaver(store) if store.is_postgres else TurnSaver(store)

    src, dst = saver(source_store), saver(target_store)
    threads = [
        str(r["thread_id"])
        for r in source_store.query("SELECT DISTINCT thread_id FROM checkpoints ORDER BY 1")
    ]
    added = 0
    for thread_id in threads:
        config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        found = src.get_tuple(config)
        if found is None:
            continue
        mine = dst.get_tuple(config)
        if mine is not None and mine.checkpoint["id"] == found.checkpoint["id"]:
            continue  # copied before
        versions = dict(found.checkpoint.get("channel_versions", {}))
        dst.put(found.parent_config or config, found.checkpoint, found.metadata, versions)
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in found.pending_writes or ():
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            dst.put_writes(found.config, writes, task_id)
        dst.flush(thread_id)
        added += 1
    return TableCopy("checkpoints", len(threads), added, "through the LangGraph savers")


def copy_database(source: DatabaseUrl, target: DatabaseUrl, data_dir: Path) -> list[TableCopy]:
    """Copy every table of ``source`` into ``target`` (see the module docstring).

    Args:
        source: the database to read (left untouched).
        target: the database to fill (created and migrated when empty).
        data_dir: the clinic's data directory (its migration lock on SQLite).
    """
    from clinicflow.storage import Store

    if source == target:
        raise StorageError("--from and --to are the same database")
    if not source.is_postgres and not source.sqlite_path.exists():
        raise StorageError(f"não há banco em {source.sqlite_path}")
    source_store = Store(data_dir, source.url)
    target_store = Store(data_dir, target.url)
    try:
        src, dst = source_store.conn, target_store.conn
        tables = [t for t in _tables(src) if t not in _CHECKPOINT_TABLES and t not in _SKIP]
        _create_missing(dst, tables)
        if "apscheduler_jobs" in tables:
            _create_jobs_table(target)
        have = set(_tables(dst))
        report = [_copy_table(src, dst, t) for t in tables if t in have]
        report += [
            TableCopy(t, 0, 0, "not on the target: skipped") for t in tables if t not in have
        ]
        report.append(_copy_checkpoints(source_store, target_store))
        return report
    finally:
        source_store.close()
        target_store.close()


def _create_jobs_table(target: DatabaseUrl) -> None:
    """APScheduler's table, created by APScheduler itself on the target."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore

    from clinicflow.scheduler import _engine

    engine = _engine(target.sqlalchemy_url, postgres=target.is_postgres)
    try:
        store = SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs")
        store.jobs_t.create(engine, checkfirst=True)
    finally:
        engine.dispose()
