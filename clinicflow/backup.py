"""Backups of a data directory: an online, consistent copy, and its restore.

``backup`` copies ``clinicflow.db`` with SQLite's backup API, so it can run while the runner
serves: the copy is one consistent snapshot (history, checkpoints, inbox, outbox, pending
follow-ups), whatever is being written at that moment. Beside it goes ``manifest.json``: when,
which clinicflow, the file's checksum, and the schema with each table's row count. The
LanceDB index (``index.lance``) and the intent models (``models/``) are not copied: they hold
only the catalog's examples and the understanding corpus, and are rebuilt on the first start.

``restore`` refuses a data directory that a runner is using (see :func:`in_use`) and, without
``force``, one that already holds a database.

A running runner holds an exclusive lock on ``<data>/.lock`` (:class:`DataDirLock`, that is
:class:`clinicflow.datadir.WriterLock`); restore checks it. The kernel releases the lock when
the process dies.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from clinicflow.clock import iso
from clinicflow.database import resolve
from clinicflow.datadir import LOCK_NAME, WriterLock, flock
from clinicflow.errors import StorageError
from clinicflow.storage import DB_NAME

__all__ = [
    "MANIFEST",
    "BackupError",
    "DataDirLock",
    "Manifest",
    "backup",
    "in_use",
    "restore",
]

MANIFEST = "manifest.json"
FORMAT = "clinicflow-backup/1"
INDEX_NOTE = (
    "index.lance and models/ are not copied: they hold only the catalog and the understanding "
    "corpus, and are rebuilt on start"
)
_DB_FILES = (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm")


class BackupError(StorageError):
    """A backup or restore cannot be made (destination not empty, data dir in use, bad copy)."""


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` says about a backup."""

    created_at: str
    clinicflow: str
    sha256: str
    bytes: int
    tables: dict[str, int]
    schema: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "created_at": self.created_at,
            "clinicflow": self.clinicflow,
            "database": {
                "file": DB_NAME,
                "sha256": self.sha256,
                "bytes": self.bytes,
                "tables": self.tables,
                "schema": list(self.schema),
            },
            "index": INDEX_NOTE,
        }

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        """The manifest of a backup folder.

        Raises:
            BackupError: one line saying what is wrong, in words (no manifest, not JSON, which
                field is missing or of the wrong kind).
        """
        where = f"{folder} não é uma cópia do clinicflow"
        try:
            raw = (folder / MANIFEST).read_text("utf-8")
        except FileNotFoundError:
            raise BackupError(f"{where}: não há {MANIFEST} na pasta") from None
        except (OSError, UnicodeDecodeError):
            raise BackupError(f"{where}: não foi possível ler {MANIFEST}") from None
        try:
            data = json.loads(raw)
        except ValueError:
            raise BackupError(f"{where}: {MANIFEST} não é um JSON válido") from None
        if not isinstance(data, dict):
            raise BackupError(f"{where}: {MANIFEST} não tem os campos de uma cópia")
        if "format" not in data:
            raise BackupError(f"{where}: falta o campo 'format' em {MANIFEST}")
        if data["format"] != FORMAT:
            raise BackupError(f"{folder}: formato de cópia desconhecido {data['format']}")

        def field(path: str, kind: type) -> Any:
            value: Any = data
            parts = path.split(".")
            for depth, part in enumerate(parts, 1):
                if not isinstance(value, dict) or part not in value:
                    missing = ".".join(parts[:depth])
                    raise BackupError(f"{where}: falta o campo '{missing}' em {MANIFEST}")
                value = value[part]
            if not isinstance(value, kind) or isinstance(value, bool):
                raise BackupError(f"{where}: o campo '{path}' de {MANIFEST} está com valor errado")
            return value

        tables = field("database.tables", dict)
        schema = field("database.schema", list)
        try:
            return cls(
                created_at=str(field("created_at", str)),
                clinicflow=str(field("clinicflow", str)),
                sha256=str(field("database.sha256", str)),
                bytes=int(field("database.bytes", int)),
                tables={str(k): int(v) for k, v in tables.items()},
                schema=tuple(str(s) for s in schema),
            )
        except (TypeError, ValueError):
            raise BackupError(
                f"{where}: o campo 'database.tables' de {MANIFEST} está com valor errado"
            ) from None


DataDirLock = WriterLock  # the serving process's exclusive lock (clinicflow.datadir)


def in_use(data_dir: str | Path) -> bool:
    """Whether a process (a runner) holds the data directory's lock right now."""
    path = Path(data_dir) / LOCK_NAME
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        return not flock(fd, shared=False, wait=False)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_db(source: Path, target: Path) -> None:
    """SQLite's online backup of ``source`` into a new ``target``, checked."""
    src = sqlite3.connect(str(source), timeout=30.0)
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst)  # one step: a single read transaction, so one consistent snapshot
        dst.execute("PRAGMA journal_mode=DELETE")  # a self-contained file, no -wal beside it
        ok = dst.execute("PRAGMA integrity_check").fetchone()
        if not ok or ok[0] != "ok":
            raise BackupError(f"a cópia {target} não passou na verificação: {ok}")
    except sqlite3.Error as exc:
        raise BackupError(f"não foi possível copiar {source}: {exc}") from exc
    finally:
        dst.close()
        src.close()


def _describe(db: Path) -> tuple[dict[str, int], tuple[str, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type IN ('table', 'index') "
            "AND name NOT LIKE 'sqlite_%' AND sql IS NOT NULL ORDER BY type DESC, name"
        ).fetchall()
        tables = {
            name: conn.execute(f'SELECT COUNT(*) FROM "{name}"').fetchone()[0]
            for name, sql in rows
            if sql.upper().startswith("CREATE TABLE")
        }
        return tables, tuple(sql for _, sql in rows)
    finally:
        conn.close()


def _sqlite_only(data_dir: str | Path) -> None:
    """Backups copy the SQLite file; a PostgreSQL clinic is backed up with pg_dump."""
    if resolve(data_dir).is_postgres:
        raise BackupError(
            "CLINICFLOW_DATABASE_URL aponta para o PostgreSQL: use pg_dump/pg_restore para a "
            "cópia de segurança (backup e restore copiam só o arquivo SQLite)"
        )


def _empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def backup(data_dir: str | Path, dest: str | Path, *, now: datetime) -> Manifest:
    """Copy a data directory's database into ``dest`` (a new or empty folder), online.

    Raises:
        BackupError: no database in ``data_dir``, or ``dest`` is not empty.
    """
    from clinicflow import __version__

    _sqlite_only(data_dir)
    source = Path(data_dir) / DB_NAME
    folder = Path(dest)
    if not source.exists():
        raise BackupError(f"não há banco de dados em {data_dir}")
    if not _empty(folder):
        raise BackupError(f"a pasta de destino {folder} não está vazia")
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / DB_NAME
    _copy_db(source, target)
    tables, schema = _describe(target)
    manifest = Manifest(
        created_at=iso(now),
        clinicflow=__version__,
        sha256=_sha256(target),
        bytes=target.stat().st_size,
        tables=tables,
        schema=schema,
    )
    (folder / MANIFEST).write_text(json.dumps(manifest.as_dict(), indent=2) + "\n", "utf-8")
    return manifest


def restore(source: str | Path, data_dir: str | Path, *, force: bool = False) -> Manifest:
    """Put a backup back into ``data_dir``.

    Args:
        source: a folder written by :func:`backup`.
        data_dir: the data directory to restore into.
        force: replace a database already in ``data_dir`` (never one in use).

    Raises:
        BackupError: the backup is damaged, the data directory is in use, or it already holds
            a database and ``force`` is not given.
    """
    _sqlite_only(data_dir)
    folder = Path(source)
    manifest = Manifest.read(folder)
    copy = folder / DB_NAME
    if not copy.exists() or _sha256(copy) != manifest.sha256:
        raise BackupError(f"{copy} está faltando ou não confere com o manifest.json")
    target_dir = Path(data_dir)
    if in_use(target_dir):
        raise BackupError(f"a pasta {target_dir} está em uso (pare o clinicflow serve antes)")
    existing = [target_dir / name for name in _DB_FILES if (target_dir / name).exists()]
    if not force and not _empty(target_dir):
        raise BackupError(f"a pasta {target_dir} não está vazia (use --force para substituir)")
    target_dir.mkdir(parents=True, exist_ok=True)
    for path in existing:
        path.unlink()
    _copy_db(copy, target_dir / DB_NAME)
    return manifest
