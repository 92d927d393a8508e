"""The webhook spool: acknowledged webhooks kept in a file while the database cannot be written.

The inbox stores every message before WAHA gets its 200. When another process holds the
database's write lock (a long report, an erase, an operator's ``sqlite3`` session), that
insert would wait, and every acknowledgement with it. The runner then appends the webhook's
verified raw body to ``<data>/inbox.spool`` (one base64 line each, ``O_APPEND``: a line is
written whole or not at all; flushed to the OS, like the database's own ``synchronous=NORMAL``
commits) and answers 200 at once; when the database can be written again, it replays the
spool through the inbox, whose dedupe makes a replayed copy of a stored message harmless.
A spool left by a crash is replayed at the next start.
"""

from __future__ import annotations

import base64
import binascii
import os
import threading
from pathlib import Path

__all__ = ["Spool"]


class Spool:
    """Raw webhook bodies waiting for the database, in arrival order."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._repair()

    def _repair(self) -> None:
        """Drop a line torn by a crash mid-write, so the next append starts on a line of its own."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return
        whole = [line for line in data.split(b"\n") if line and _decode(line) is not None]
        if not data.endswith(b"\n") or len(whole) != data.count(b"\n"):
            self._rewrite(whole)

    def append(self, raw: bytes) -> None:
        """Keep one body (durable once this returns, as far as the OS is concerned)."""
        line = base64.b64encode(raw) + b"\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def __len__(self) -> int:
        with self._lock:
            if not self.path.exists():
                return 0
            return self.path.read_bytes().count(b"\n")

    def peek(self) -> list[bytes]:
        """Every body kept, oldest first (a torn last line, from a crash mid-write, is skipped)."""
        with self._lock:
            try:
                data = self.path.read_bytes()
            except FileNotFoundError:
                return []
        bodies = [_decode(line) for line in data.split(b"\n") if line]
        return [body for body in bodies if body is not None]

    def drop(self, count: int) -> None:
        """Forget the ``count`` oldest bodies (replayed)."""
        with self._lock:
            try:
                lines = self.path.read_bytes().split(b"\n")
            except FileNotFoundError:
                return
            self._rewrite([line for line in lines if line][count:])

    def _rewrite(self, lines: list[bytes]) -> None:
        if not lines:
            self.path.unlink(missing_ok=True)
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_bytes(b"\n".join(lines) + b"\n")
        os.replace(tmp, self.path)


def _decode(line: bytes) -> bytes | None:
    try:
        return base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError):
        return None
