"""One lock per chat: a chat's turns and changes run one at a time, other chats in parallel.

The engine used to hold one lock for every turn, so a slow Gemini call or a wait for the
database in one chat stalled every other chat. :class:`ChatLocks` hands out a re-entrant lock
per key, kept only while someone holds or waits for it (memory stays flat however many chats
there are).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ChatLocks"]


class ChatLocks:
    """Re-entrant locks by chat id, created on demand and dropped when unused."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, tuple[threading.RLock, list[int]]] = {}

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` (waiting for whoever holds it)."""
        with self._guard:
            entry = self._locks.get(key)
            if entry is None:
                entry = self._locks[key] = (threading.RLock(), [0])
            entry[1][0] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._guard:
                entry[1][0] -= 1
                if entry[1][0] == 0:
                    del self._locks[key]

    def __len__(self) -> int:
        """Keys held or waited for right now."""
        with self._guard:
            return len(self._locks)
