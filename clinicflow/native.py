"""The thread count of every native library the engine loads, owned by the engine.

numpy's OpenBLAS starts a helper thread per core that spins during every embedding (whole-
process CPU per turn ~2.4x the turn's own), and LanceDB/Arrow size their pools to the machine.
A turn is one short sentence: one thread is the fastest, and leaves the other cores to the
other turns (workers) and to the machine's other work. :func:`limit_native_threads` sets it
once per process, without relying on the operator's environment:

- BLAS / OpenMP already loaded: through ``threadpoolctl`` (process-wide, not restored);
- libraries loaded later (LanceDB's Rust pools, Arrow, OpenBLAS in a fresh process): the
  environment variables they read when they start.

:func:`lancedb` imports LanceDB with its Rust log quiet: by default it writes ``WARN`` lines
("No existing dataset at ..., it will be created") to the terminal where a secretary chats.
LanceDB's Python package reads ``LANCEDB_LOG`` (the ``lance`` package, ``LANCE_LOG``): both
are set to ``error`` before the import, unless the operator set either herself.
"""

from __future__ import annotations

import os
import threading
from types import ModuleType

ENV_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "RAYON_NUM_THREADS",
    "LANCE_CPU_THREADS",
)

#: The variables LanceDB's Rust log level is read from (lancedb, and lance itself).
LANCE_LOG_VARS = ("LANCEDB_LOG", "LANCE_LOG")

_lock = threading.Lock()
_limited: int | None = None
_keep: list[object] = []  # the threadpoolctl limiter, kept so the limit is never undone


def limit_native_threads(threads: int = 1) -> None:
    """Make every native library of this process use ``threads`` threads (idempotent).

    Args:
        threads: threads per library; 1 for a server (the default of ``Engine``).
    """
    global _limited
    with _lock:
        if _limited == threads:
            return
        for name in ENV_VARS:
            os.environ[name] = str(threads)
        import numpy  # noqa: F401  (load BLAS so threadpoolctl sees it)
        from threadpoolctl import threadpool_limits

        _keep[:] = [threadpool_limits(limits=threads)]
        _set_arrow(threads)
        _limited = threads


def _set_arrow(threads: int) -> None:
    try:
        import pyarrow
    except ImportError:  # pragma: no cover - LanceDB always brings pyarrow
        return
    pyarrow.set_cpu_count(max(1, threads))
    pyarrow.set_io_thread_count(max(2, threads))


def blas_threads() -> list[int]:
    """The thread count of each BLAS library loaded in this process (tests, /health)."""
    from threadpoolctl import threadpool_info

    return [int(info["num_threads"]) for info in threadpool_info() if info["user_api"] == "blas"]


def lancedb() -> ModuleType:
    """The ``lancedb`` module, imported with its Rust log at ``error`` unless the operator
    set :data:`LANCE_LOG_VARS` (see the module docstring)."""
    if not any(name in os.environ for name in LANCE_LOG_VARS):
        for name in LANCE_LOG_VARS:
            os.environ[name] = "error"
    import lancedb as module

    return module


__all__ = ["ENV_VARS", "LANCE_LOG_VARS", "blas_threads", "lancedb", "limit_native_threads"]
