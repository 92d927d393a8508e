"""The thread count of every native library the engine loads, owned by the engine.

numpy's OpenBLAS starts a helper thread per core that spins during every embedding (whole-
process CPU per turn ~2.4x the turn's own), and LanceDB/Arrow size their pools to the machine.
A turn is one short sentence: one thread is the fastest, and leaves the other cores to the
other turns (workers) and to the machine's other work. :func:`limit_native_threads` sets it
once per process, without relying on the operator's environment:

- BLAS / OpenMP already loaded: through ``threadpoolctl`` (process-wide, not restored);
- libraries loaded later (LanceDB's Rust pools, Arrow, OpenBLAS in a fresh process): the
  environment variables they read when they start.
"""

from __future__ import annotations

import os
import threading

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


__all__ = ["ENV_VARS", "blas_threads", "limit_native_threads"]
