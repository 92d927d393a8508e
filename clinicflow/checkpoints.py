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
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.sqlite import SqliteSaver

from clinicflow.storage import Row, Store

__all__ = ["TurnSaver"]

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


class TurnSaver(SqliteSaver):
    """A ``SqliteSaver`` whose writes wait for :meth:`flush` (see the module docstring)."""

    def __init__(self, store: Store) -> None:
        super().__init__(store.conn)
        self.store = store
        self.lock = store.lock  # type: ignore[assignment]  # one connection, one lock
        self._pending: dict[str, _Pending] = {}
        self._guard = threading.Lock()

    def _buffer(self, thread_id: str) -> _Pending:
        with self._guard:
            return self._pending.setdefault(thread_id, _Pending())

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

    def stage(self, thread_id: str, rows: Sequence[Row]) -> None:
        """History rows to commit with the chat's checkpoint at :meth:`flush`."""
        self._buffer(thread_id).rows.extend(rows)

    def discard(self, thread_id: str) -> None:
        """Forget what a failed run buffered (nothing of it is stored)."""
        with self._guard:
            self._pending.pop(thread_id, None)

    def flush(self, thread_id: str) -> None:
        """Commit the run's history rows and final checkpoint; drop the chat's older ones."""
        with self._guard:
            pending = self._pending.pop(thread_id, None)
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
