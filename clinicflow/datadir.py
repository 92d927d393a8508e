"""The data directory: one writer at a time, a clear word when it cannot be written, and
one builder at a time for what a first start creates.

- :class:`WriterLock`: the process that serves a data directory (``clinicflow serve``) holds
  an exclusive OS lock (``flock``) on ``<data>/.lock`` for as long as it runs; a second one is
  refused at once with :class:`DataDirInUse`, naming the holder's pid. The kernel drops the
  lock when the process dies, however it dies, so there is nothing stale to clean up.
  ``restore`` (:func:`clinicflow.backup.in_use`) checks the same lock.
- :func:`ensure_writable`: a data directory that cannot be created or written (read-only
  filesystem, permissions) is a one-line :class:`~clinicflow.errors.StorageError`.
- :func:`build_lock`: index, model and schema creation on a fresh data directory run under
  ``<data>/.build.lock``, so two engines opening it at once wait for each other instead of
  failing with "database is locked" or half-written files.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator
from pathlib import Path

from clinicflow.errors import StorageError

LOCK_NAME = ".lock"
BUILD_LOCK_NAME = ".build.lock"

__all__ = [
    "BUILD_LOCK_NAME",
    "LOCK_NAME",
    "DataDirInUse",
    "WriterLock",
    "build_lock",
    "ensure_writable",
    "flock",
    "unwritable",
]


class DataDirInUse(StorageError):
    """Another process serves this data directory (``pid`` when it could be read)."""

    exit_code = 3

    def __init__(self, message: str, pid: int | None = None) -> None:
        super().__init__(message)
        self.pid = pid


def flock(fd: int, *, shared: bool, wait: bool) -> bool:
    """Lock an open file; False when ``wait`` is off and another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        return True
    flags = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | (0 if wait else fcntl.LOCK_NB)
    try:
        fcntl.flock(fd, flags)
    except BlockingIOError:
        return False
    return True


def ensure_writable(data_dir: str | Path) -> Path:
    """Create the data directory if needed and check that it can be written.

    Raises:
        StorageError: one line naming the folder and the reason (read-only filesystem,
            permission denied, a file in the way).
    """
    path = Path(data_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise unwritable(path, exc) from None
    return path


def unwritable(path: Path, exc: OSError) -> StorageError:
    """The one-line error for a data directory that cannot be created or written."""
    return StorageError(
        f"não dá para gravar na pasta de dados {path}: {_reason(exc)} "
        "(escolha uma pasta gravável com --data ou CLINICFLOW_DATA)"
    )


#: Why a folder cannot be written, in the words of who reads the CLI (the OS says it in English).
_REASONS = {
    errno.EEXIST: "há um arquivo com esse nome no caminho (precisa ser uma pasta)",
    errno.ENOTDIR: "há um arquivo com esse nome no caminho (precisa ser uma pasta)",
    errno.EACCES: "sem permissão de escrita",
    errno.EPERM: "sem permissão de escrita",
    errno.EROFS: "o disco está montado só para leitura",
    errno.ENOSPC: "o disco está cheio",
    errno.EDQUOT: "a cota do disco acabou",
    errno.ENAMETOOLONG: "o caminho é longo demais",
}


def _reason(exc: OSError) -> str:
    known = _REASONS.get(exc.errno or 0)
    if known:
        return known
    return f"erro do sistema: {exc.strerror or type(exc).__name__}"


class WriterLock:
    """The one writer of a data directory (see the module docstring).

    Use :meth:`acquire` / :meth:`release`, or ``with``.
    """

    def __init__(self, data_dir: str | Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock now or raise :class:`DataDirInUse` (never waits)."""
        if self._fd is not None:
            return
        ensure_writable(self.data_dir)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        if not flock(fd, shared=False, wait=False):
            pid = _read_pid(fd)
            os.close(fd)
            holder = f" (pid {pid})" if pid else ""
            raise DataDirInUse(
                f"a pasta de dados {self.data_dir} já está em uso por outro processo do "
                f"clinicflow{holder}; pare esse processo antes, ou dê a este outra pasta com "
                "--data ou CLINICFLOW_DATA",
                pid,
            )
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def build_lock(data_dir: str | Path) -> Iterator[None]:
    """Hold ``<data>/.build.lock`` exclusively (waiting for another builder to finish)."""
    path = ensure_writable(data_dir) / BUILD_LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        flock(fd, shared=False, wait=True)
        yield
    finally:
        os.close(fd)
