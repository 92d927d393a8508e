"""The engine's checkpointer: one chat's newest checkpoint and its history, one commit.

:class:`TurnSaver` is LangGraph's ``SqliteSaver`` on the history's own connection and lock
(:class:`~clinicflow.storage.Store`), with its writes held back while a run goes on: LangGraph
``put``\\ s the checkpoint and ``put_writes`` each task's writes (~10 calls a turn), and the
turn's ``persist`` step stages its history rows (:meth:`stage`). When the run is over, the
engine calls :meth:`flush`, which in one transaction writes the history rows, the final
checkpoint (and the writes still pending on it), and deletes the chat's older checkpoints:
one commit per turn instead of ~12, and a crash can never leave the state and the history of
a turn apart. Only the newest checkpoint of a chat is kept (the history lives in the tables).

Runs of one chat are serialised by the engine (per-chat lock); different chats buffer apart.

On PostgreSQL (:mod:`clinicflow.database`) the same buffering sits on LangGraph's
``PostgresSaver`` (``langgraph-checkpoint-postgres``) as :class:`PgTurnSaver`: the flush
calls the library's own ``put``/``put_writes`` inside the store's transaction, with the
channel versions of every ``put`` of the run (the library writes a blob for the channels a
``put`` changed, and only the run's last ``put`` is written). :func:`turn_saver` picks the
one that fits the store; :func:`setup_checkpoints` creates either's tables.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from clinicflow.database import is_postgres
from clinicflow.storage import Row, Store

__all__ = ["PgTurnSaver", "TurnSaver", "setup_checkpoints", "turn_saver"]

_PUT_CHECKPOINT = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, "
    "parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_PUT_WRITE = (
    "INSERT OR REPLACE INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, "
    "task_path, idx, channel, type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


@dataclass
class _Pending:
    checkpoint: tuple[Any, ...] | None = None
    writes: list[tuple[Any, ...]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


class _HasRows(Protocol):
    rows: list[Row]


P = TypeVar("P", bound=_HasRows)


class _RunBuffers(Generic[P]):
    """What each chat's run holds back until :meth:`flush` (both savers): a pending value
    per thread id, made by ``new`` (the saver's own layout), with the history rows staged."""

    store: Store
    lock: Any  # the saver's lock, made the store's: one connection, one lock
    _new: Callable[[], P]

    def _hold(self, store: Store, new: Callable[[], P]) -> None:
        self.store = store
        self.lock = store.lock
        self._new = new
        self._pending: dict[str, P] = {}
        self._guard = threading.Lock()

    def _buffer(self, thread_id: str) -> P:
        with self._guard:
            found = self._pending.get(thread_id)
            if found is None:
                found = self._pending[thread_id] = self._new()
            return found

    def _take(self, thread_id: str) -> P | None:
        """The run's buffer, no longer held (None when the run buffered nothing)."""
        with self._guard:
            return self._pending.pop(thread_id, None)

    def stage(self, thread_id: str, rows: Sequence[Row]) -> None:
        """History rows to commit with the chat's checkpoint at :meth:`flush`."""
        self._buffer(thread_id).rows.extend(rows)

    def discard(self, thread_id: str) -> None:
        """Forget what a failed run buffered (nothing of it is stored)."""
        self._take(thread_id)


class TurnSaver(_RunBuffers[_Pending], SqliteSaver):
    """A ``SqliteSaver`` whose writes wait for :meth:`flush` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        SqliteSaver.__init__(self, store.conn)
        self._hold(store, _Pending)

    def put(
        self,
        config: Any,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Any:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        checkpoint_ns = configurable["checkpoint_ns"]
        type_, blob = self.serde.dumps_typed(checkpoint)
        meta = json.dumps(get_checkpoint_metadata(config, metadata), ensure_ascii=False)
        self._buffer(thread_id).checkpoint = (
            thread_id,
            checkpoint_ns,
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            type_,
            blob,
            meta.encode("utf-8", "ignore"),
        )
        return {
            "configurable": {
                "thread_id": configurable["thread_id"],
                "checkpoint_ns": checkpoint_ns,
                "checkpoint_id": checkpoint["id"],
            }
        }

    def put_writes(
        self,
        config: Any,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        rows = [
            (
                thread_id,
                str(configurable["checkpoint_ns"]),
                str(configurable["checkpoint_id"]),
                task_id,
                task_path,
                WRITES_IDX_MAP.get(channel, idx),
                channel,
                *self.serde.dumps_typed(value),
            )
            for idx, (channel, value) in enumerate(writes)
        ]
        self._buffer(thread_id).writes.extend(rows)

    def flush(self, thread_id: str) -> None:
        """Commit the run's history rows and final checkpoint; drop the chat's older ones."""
        pending = self._take(thread_id)
        if pending is None:
            return
        with self.store.transaction() as conn:
            self.setup()
            self.store.write_rows(conn, pending.rows)
            if pending.checkpoint is None:
                return
            newest = pending.checkpoint[2]
            conn.execute(_PUT_CHECKPOINT, pending.checkpoint)
            writes = [w for w in pending.writes if w[2] == newest]
            if writes:
                conn.executemany(_PUT_WRITE, writes)
            conn.execute(
                "DELETE FROM checkpoints WHERE thread_id = ? AND checkpoint_id <> ?",
                (thread_id, newest),
            )
            conn.execute(
                "DELETE FROM writes WHERE thread_id = ? AND checkpoint_id <> ?",
                (thread_id, newest),
            )


def setup_checkpoints(conn: Any) -> None:
    """Create the checkpointer's tables on ``conn`` (SQLite or PostgreSQL)."""
    if is_postgres(conn):
        PostgresSaver(conn.raw).setup()
    else:
        SqliteSaver(conn).setup()


def turn_saver(store: Store) -> Any:
    """The :class:`TurnSaver` of ``store``'s backend."""
    return PgTurnSaver(store) if store.is_postgres else TurnSaver(store)


@dataclass
class _PgPending:
    put: tuple[Any, Checkpoint, CheckpointMetadata] | None = None
    versions: set[str] = field(default_factory=set)
    writes: list[tuple[Any, Sequence[tuple[str, Any]], str, str]] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)


class PgTurnSaver(_RunBuffers[_PgPending], PostgresSaver):
    """A ``PostgresSaver`` whose writes wait for :meth:`flush` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        PostgresSaver.__init__(self, store.conn.raw)
        self._hold(store, _PgPending)
        self.supports_pipeline = False  # statements join the store's transaction

    @property
    def conn(self) -> Any:
        """The store's connection as it is now: it is opened again after a lost one (see
        :meth:`clinicflow.database.PgConnection.live`), so the saver never keeps a dead one."""
        store = self.__dict__.get("store")
        return store.conn.live() if store is not None else self.__dict__.get("_first_conn")

    @conn.setter
    def conn(self, value: Any) -> None:
        self.__dict__["_first_conn"] = value  # PostgresSaver.__init__'s; the store's wins

    def put(
        self,
        config: Any,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> Any:
        configurable = config["configurable"]
        pending = self._buffer(str(configurable["thread_id"]))
        pending.put = (config, checkpoint, metadata)
        pending.versions.update(new_versions)
        return {
            "configurable": {
                "thread_id": configurable["thread_id"],
                "checkpoint_ns": configurable["checkpoint_ns"],
                "checkpoint_id": checkpoint["id"],
            }
        }

    def put_writes(
        self,
        config: Any,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id = str(config["configurable"]["thread_id"])
        self._buffer(thread_id).writes.append((config, list(writes), task_id, task_path))

    def flush(self, thread_id: str) -> None:
        """The run's history rows, final checkpoint and its writes in one transaction."""
        pending = self._take(thread_id)
        if pending is None:
            return
        with self.store.transaction() as conn:
            self.store.write_rows(conn, pending.rows)
            if pending.put is None:
                return
            config, checkpoint, metadata = pending.put
            channel_versions = checkpoint["channel_versions"]
            versions = {k: channel_versions[k] for k in pending.versions if k in channel_versions}
            super().put(config, checkpoint, metadata, versions)
            newest = checkpoint["id"]
            for w_config, writes, task_id, task_path in pending.writes:
                if str(w_config["configurable"].get("checkpoint_id")) == newest:
                    super().put_writes(w_config, writes, task_id, task_path)
            raw = conn.raw
            raw.execute(
                "DELETE FROM checkpoints WHERE thread_id = %s AND checkpoint_id <> %s",
                (thread_id, newest),
            )
            raw.execute(
                "DELETE FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_id <> %s",
                (thread_id, newest),
            )
            raw.execute(
                "DELETE FROM checkpoint_blobs b WHERE b.thread_id = %s AND NOT EXISTS ("
                "SELECT 1 FROM checkpoints c, "
                "jsonb_each_text(c.checkpoint -> 'channel_versions') v "
                "WHERE c.thread_id = b.thread_id AND c.checkpoint_ns = b.checkpoint_ns "
                "AND v.key = b.channel AND v.value = b.version)",
                (thread_id,),
            )
