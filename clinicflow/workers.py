"""Engines in worker processes: every core works, and one slow chat delays no other.

:class:`EnginePool` starts ``workers`` processes, each with its own :class:`Engine` over the
same data directory, and sends each chat to one of them (``crc32(chat_id) % workers``), so a
chat's turns and changes stay in order in one process while different chats use every core.
Inside a worker, turns run on a thread pool with the engine's per-chat locks: a turn waiting
for Gemini or for the database holds its own chat only. The caller's process (the runner's
event loop) never runs a turn; it acknowledges, stores, sends and schedules::

    runner process                         worker k (one per core)
    EnginePool.handle(chat, text) ──pipe──▶ thread pool ─▶ Engine.handle (chat lock)
             ◀── TurnResult + follow-up jobs ───┘

- **Clock**: each request carries the caller's ``clock.now()``; a worker's engine reads it
  (:class:`RelayClock`), so a test's ``ManualClock`` reaches every worker.
- **Follow-ups**: the jobs live in the caller's process (one APScheduler on the data dir).
  A worker's engine records what a turn schedules or cancels (:class:`RecordedJobs`); the
  pool applies it to the real :class:`~clinicflow.scheduler.FollowUpScheduler`, and a job
  that comes due is sent to the chat's worker, in the chat's order, like a turn, while the
  runner owns the chat (:class:`~clinicflow.database.ChatOwnership`: with several runners on
  one PostgreSQL it waits for another runner's turn of that chat to end).
- **Health**: :meth:`EnginePool.health` tells, per worker, whether it is alive and how long
  its oldest request has been running; a request older than ``stuck_after`` makes it stuck.
  A worker that dies is started again; its requests in flight fail with :class:`WorkerError`
  (the runner's crash recovery picks the turn up again).

:class:`LocalEngine` offers the same calls over an engine in this process (tests, examples):
turns on a thread pool of their own, per-chat locks, nothing global.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import os
import sys
import threading
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from clinicflow.clock import Clock, SystemClock
from clinicflow.database import unreachable
from clinicflow.errors import ClinicflowError, ConversationError, DatabaseUnavailable
from clinicflow.pseudonyms import shape
from clinicflow.scheduler import FiredFollowUp, JobKind, PendingFollowUp

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

    from clinicflow.database import ChatOwnership
    from clinicflow.engine import Engine, TurnResult
    from clinicflow.hours import BusinessHours
    from clinicflow.llm import LLMConfig
    from clinicflow.model import Catalog
    from clinicflow.scheduler import FollowUpScheduler
    from clinicflow.storage import Store

log = logging.getLogger("clinicflow.workers")

__all__ = [
    "EnginePool",
    "EngineSpec",
    "LocalEngine",
    "RecordedJobs",
    "RelayClock",
    "Turns",
    "WorkerError",
    "default_workers",
]

#: Operations a worker runs on its engine (method names of Engine, and the follow-up fire).
OPS = frozenset(
    {
        "handle",
        "take_over",
        "hand_back",
        "close",
        "mark_scheduled",
        "record_event",
        "start",
        "screen_edit",
    }
)
OnFollowUp = Callable[["TurnResult"], None]

#: A due follow-up whose chat another runner holds: how often it tries for the chat again, and
#: for how long at most (seconds; see :meth:`EnginePool._own`).
OWN_RETRY_S = 0.5
OWN_WAIT_S = 300.0


class WorkerError(ClinicflowError):
    """A worker process died or could not start (its requests in flight fail with it)."""


def default_workers() -> int:
    """One worker per core but one (left to the event loop), between 1 and 4."""
    return max(1, min(4, (os.cpu_count() or 2) - 1))


@dataclass(frozen=True)
class EngineSpec:
    """What a worker needs to build its engine (picklable)."""

    data_dir: Path
    catalog: Path | None = None
    llm: LLMConfig | None = None
    database_url: str | None = None  # None: $CLINICFLOW_DATABASE_URL, else SQLite in data_dir
    threads: int = 32  # turns at once per worker (most of them waiting, for Gemini say)


class RelayClock:
    """The time of the request this thread serves (the caller's clock), else the system's."""

    def __init__(self) -> None:
        self._local = threading.local()

    def set(self, when: datetime | None) -> None:
        self._local.now = when

    def now(self) -> datetime:
        when: datetime | None = getattr(self._local, "now", None)
        return when if when is not None else datetime.now(UTC)


class RecordedJobs:
    """A worker's follow-up scheduler: records each call for the caller to apply."""

    def __init__(self) -> None:
        self._local = threading.local()

    def begin(self) -> None:
        self._local.ops = []
        self._local.sent = []

    def take(self) -> tuple[list[tuple[Any, ...]], list[TurnResult]]:
        ops, sent = getattr(self._local, "ops", []), getattr(self._local, "sent", [])
        self.begin()
        return ops, sent

    def sent(self, result: TurnResult) -> None:
        self._local.sent.append(result)

    def start(self) -> None:
        pass

    def shutdown(self, wait: bool = True) -> None:
        pass

    def schedule(
        self,
        chat_id: str,
        fire_at: datetime,
        state: str,
        index: int,
        script_digest: str,
        *,
        since: str | datetime | None = None,
        deadline: datetime | None = None,
        kind: JobKind = "follow_up",
    ) -> None:
        args = (chat_id, fire_at, state, index, script_digest)
        self._local.ops.append(("schedule", args, {"since": since, "deadline": deadline,
                                                   "kind": kind}))  # fmt: skip

    def cancel(self, chat_id: str) -> bool:
        self._local.ops.append(("cancel", (chat_id,), {}))
        return True

    def pending_all(self) -> list[PendingFollowUp]:
        return []


# -- the worker process ---------------------------------------------------------------------


def _die_with_parent(parent: int) -> None:  # pragma: no cover - a child
    """Linux: the kernel kills this worker when the runner dies, SIGKILL included.

    An orphaned worker would finish its turn and commit it after another runner (or the
    restarted one) already took the chat over and ran the turn again: the same turn twice.
    (The signal follows the thread that started the worker: the event loop's default
    executor, whose threads live as long as the loop.)
    """
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the runner died before the call above
        os._exit(1)


def _worker_main(
    spec: EngineSpec, conn: Connection, parent: int | None = None
) -> None:  # pragma: no cover - a child
    if parent is not None:
        _die_with_parent(parent)
    from clinicflow.native import limit_native_threads

    limit_native_threads(1)  # before numpy, LanceDB or Arrow start their pools
    from clinicflow.engine import Engine
    from clinicflow.llm import llm_from_config

    try:
        clock = RelayClock()
        llm = llm_from_config(spec.llm) if spec.llm is not None else None
        engine = Engine.from_catalog(
            spec.catalog, data_dir=spec.data_dir, llm=llm, clock=clock,
            database_url=spec.database_url,
        )  # fmt: skip
        jobs = RecordedJobs()
        engine.enable_follow_ups(jobs.sent, scheduler=jobs)
        engine.classify("quero marcar uma consulta")  # load the embedder before any patient
    except BaseException as exc:
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", os.getpid()))
    send_lock = threading.Lock()

    def run(request: tuple[Any, ...]) -> None:
        req_id, op, args, kwargs, now = request
        clock.set(now)
        jobs.begin()
        try:
            if op == "fire":
                assert engine.follow_ups is not None
                engine.follow_ups.fire(args[0])
                value: Any = None
            elif op == "revoke_message":
                value = engine.store.revoke_message(*args, **kwargs)
            elif op == "reload":
                engine.reload(*args)
                value = None
            elif op in OPS:
                value = getattr(engine, op)(*args, **kwargs)
            else:
                raise ValueError(f"unknown operation {op!r}")
            ops, sent = jobs.take()
            reply: tuple[Any, ...] = (req_id, "ok", value, ops, sent)
        except Exception as exc:
            ops, sent = jobs.take()
            kind = "conversation" if isinstance(exc, ConversationError) else "error"
            if unreachable(exc):
                kind = "unreachable"  # the database away: the caller tries the turn again
            reply = (req_id, kind, f"{type(exc).__name__}: {exc}", ops, sent)
        finally:
            clock.set(None)
        with send_lock:
            conn.send(reply)

    with ThreadPoolExecutor(spec.threads, thread_name_prefix="turn") as pool:
        while True:
            try:
                request = conn.recv()
            except (EOFError, OSError):
                break
            if request is None:
                break
            pool.submit(run, request)
    engine.close_resources()


# -- the pool (caller's side) ---------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    process: Any = None
    conn: Any = None
    pid: int | None = None
    ready: bool = False
    restarts: int = 0
    in_flight: dict[int, tuple[asyncio.Future[Any], float, str]] = field(default_factory=dict)


class EnginePool:
    """Engines in ``workers`` processes (see the module docstring).

    Args:
        spec: how each worker builds its engine.
        catalog: the catalog the runner reads (staff, hours); the workers load their own.
        store: the history, opened in this process for reads.
        clock: the clinic's clock; its ``now()`` goes with every request.
        workers: how many processes (default :func:`default_workers`).
        stuck_after: seconds after which a running request makes its worker "stuck".
        on_follow_up: receives each follow-up a worker sent (``extra["kind"]``).
    """

    def __init__(
        self,
        spec: EngineSpec,
        catalog: Catalog,
        store: Store,
        *,
        clock: Clock | None = None,
        workers: int | None = None,
        stuck_after: float = 60.0,
        on_follow_up: OnFollowUp | None = None,
    ) -> None:
        self.spec = spec
        self.catalog = catalog
        self.store = store
        self.data_dir = spec.data_dir
        self.clock: Clock = clock or SystemClock()
        self.hours = _hours(catalog, self.clock)
        self.stuck_after = stuck_after
        self.on_follow_up = on_follow_up
        self.llm: Any = None  # the runner's own (voice notes), set by the runner
        self._workers = [_Worker(i) for i in range(workers or default_workers())]
        self._ids = itertools.count(1)
        self._ctx = multiprocessing.get_context("spawn")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._jobs: FollowUpScheduler | None = None
        self._job_chats: set[str] = set()
        self._jobs_lock = threading.Lock()
        self._owner: ChatOwnership | None = None
        self._alias: Callable[[str], str] = shape
        self._fires: set[asyncio.Task[None]] = set()
        self.own_retry_s = OWN_RETRY_S
        self.own_wait_s = OWN_WAIT_S

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every worker and wait until each has its engine ready.

        Raises:
            WorkerError: a worker could not build its engine (its reason in the message).
        """
        self._loop = asyncio.get_running_loop()
        await asyncio.gather(*(self._spawn(w) for w in self._workers))

    async def _spawn(self, worker: _Worker) -> None:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker_main, args=(self.spec, child, os.getpid()),
            name=f"clinicflow-engine-{worker.index}",
            daemon=True,
        )  # fmt: skip
        await asyncio.to_thread(process.start)
        child.close()
        first = await asyncio.to_thread(_first_message, parent, process)
        if first[0] != "ready":
            process.join(5)
            raise WorkerError(f"engine worker {worker.index} did not start: {first[1]}")
        worker.process, worker.conn, worker.pid, worker.ready = process, parent, first[1], True
        loop = asyncio.get_running_loop()
        loop.add_reader(parent.fileno(), self._readable, worker)
        loop.add_reader(process.sentinel, self._died, worker)

    async def close(self) -> None:
        """Stop the follow-up jobs and the workers (their turns under way finish first)."""
        self._closed = True
        if self._jobs is not None:
            await asyncio.to_thread(self._jobs.shutdown)
            self._jobs = None
        if self._fires:  # those in their worker finish, those waiting for their chat give up
            await asyncio.wait(set(self._fires), timeout=30)
        for worker in self._workers:
            self._detach(worker)
            if worker.conn is not None:
                with contextlib.suppress(OSError):
                    worker.conn.send(None)
        for worker in self._workers:
            if worker.process is not None:
                await asyncio.to_thread(worker.process.join, 30)
                if worker.process.is_alive():
                    worker.process.kill()
            if worker.conn is not None:
                worker.conn.close()
            self._fail(worker, "the engine pool closed")

    def _detach(self, worker: _Worker) -> None:
        if self._loop is None:
            return
        with contextlib.suppress(Exception):
            self._loop.remove_reader(worker.conn.fileno())
        with contextlib.suppress(Exception):
            self._loop.remove_reader(worker.process.sentinel)

    # -- requests ---------------------------------------------------------------------------

    def worker_of(self, chat_id: str) -> int:
        """The worker a chat belongs to (stable across restarts with the same count)."""
        return zlib.crc32(chat_id.encode("utf-8", "surrogatepass")) % len(self._workers)

    async def call(self, chat_id: str, op: str, *args: Any, **kwargs: Any) -> Any:
        """Run ``op`` for ``chat_id`` in its worker and return the value.

        Raises:
            ConversationError: the engine refused (unknown chat...).
            WorkerError: the worker died or failed on it.
        """
        worker = self._workers[self.worker_of(chat_id)]
        if not worker.ready or self._closed:
            raise WorkerError(f"engine worker {worker.index} is not running")
        req_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        worker.in_flight[req_id] = (future, time.monotonic(), op)
        try:
            worker.conn.send((req_id, op, args, kwargs, self.clock.now()))
        except OSError as exc:
            worker.in_flight.pop(req_id, None)
            raise WorkerError(f"engine worker {worker.index}: {exc}") from None
        return await future

    async def handle(self, chat_id: str, text: str | None, **meta: Any) -> TurnResult:
        result: TurnResult = await self.call(chat_id, "handle", chat_id, text, **meta)
        return result

    async def change(self, op: str, chat_id: str, *args: Any, **kwargs: Any) -> Any:
        """An out-of-turn change: ``take_over``, ``hand_back``, ``close``, ``mark_scheduled``,
        ``record_event``, ``revoke_message``, ``screen_edit`` (the chat id first, as on
        Engine)."""
        return await self.call(chat_id, op, chat_id, *args, **kwargs)

    async def reload(self, path: str | Path | None = None) -> Catalog:
        """Load the catalog again here and in every worker (refused as a whole if broken)."""
        from clinicflow.loader import load_catalog

        catalog = await asyncio.to_thread(load_catalog, path or self.catalog.root)
        for worker in self._workers:
            chat = next(f"reload-{n}" for n in itertools.count() if self.worker_of(
                f"reload-{n}") == worker.index)  # fmt: skip
            await self.call(chat, "reload", path or catalog.root)
        self.catalog, self.hours = catalog, _hours(catalog, self.clock)
        return catalog

    def _readable(self, worker: _Worker) -> None:
        try:
            while worker.conn.poll():
                req_id, kind, value, ops, sent = worker.conn.recv()
                entry = worker.in_flight.pop(req_id, None)
                self._apply_jobs(ops)
                for result in sent:
                    if self.on_follow_up is not None:
                        self.on_follow_up(result)
                if entry is None or entry[0].done():
                    continue
                if kind == "ok":
                    entry[0].set_result(value)
                elif kind == "conversation":
                    entry[0].set_exception(ConversationError(value))
                elif kind == "unreachable":
                    entry[0].set_exception(
                        DatabaseUnavailable(f"engine worker {worker.index}: {value}")
                    )
                else:
                    entry[0].set_exception(WorkerError(f"engine worker {worker.index}: {value}"))
        except (EOFError, OSError):
            self._died(worker)

    def _died(self, worker: _Worker) -> None:
        if not worker.ready:
            return
        worker.ready = False
        self._detach(worker)
        self._fail(worker, "the engine worker died")
        if self._closed:
            return
        code = worker.process.exitcode if worker.process is not None else None
        log.error("engine worker %s (pid %s) died (exit %s); starting it again",
                  worker.index, worker.pid, code)  # fmt: skip
        worker.restarts += 1
        assert self._loop is not None
        self._loop.create_task(self._respawn(worker), name=f"respawn-{worker.index}")

    async def _respawn(self, worker: _Worker) -> None:
        while not self._closed:
            try:
                await self._spawn(worker)
                return
            except Exception as exc:  # keep trying: the runner serves acks meanwhile
                log.error("engine worker %s did not start again: %s", worker.index, exc)
                await asyncio.sleep(5)

    def _fail(self, worker: _Worker, why: str) -> None:
        for future, _, _ in worker.in_flight.values():
            if not future.done():
                future.set_exception(WorkerError(f"engine worker {worker.index}: {why}"))
        worker.in_flight.clear()

    # -- health -----------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``{"status": "ok"|"stuck"|"down", "workers": [...]}`` without asking the workers."""
        now = time.monotonic()
        workers = []
        status = "ok"
        for w in self._workers:
            oldest = max((now - started for _, started, _ in w.in_flight.values()), default=0.0)
            state = "ok" if w.ready else "down"
            if w.ready and oldest > self.stuck_after:
                state = "stuck"
            if state != "ok" and status != "down":
                status = state
            workers.append({"worker": w.index, "pid": w.pid, "state": state,
                            "in_flight": len(w.in_flight), "oldest_s": round(oldest, 1),
                            "restarts": w.restarts})  # fmt: skip
        return {"status": status, "workers": workers}

    # -- follow-ups -------------------------------------------------------------------------

    def enable_follow_ups(
        self,
        on_follow_up: OnFollowUp,
        *,
        owner: ChatOwnership | None = None,
        alias: Callable[[str], str] | None = None,
    ) -> None:
        """Keep the data dir's follow-up jobs here and send their messages to
        ``on_follow_up`` (called on the event loop, like a turn's result).

        Args:
            on_follow_up: receives each follow-up a worker sent.
            owner: the runner's :class:`~clinicflow.database.ChatOwnership`: a due job is
                fired only while this runner owns its chat (None: every chat is owned).
            alias: how a chat is named in log lines (default: its digits hidden).
        """
        from clinicflow.scheduler import FollowUpScheduler

        self.on_follow_up = on_follow_up
        self._owner = owner  # before start(): an overdue job may fire the moment it starts
        if alias is not None:
            self._alias = alias
        self._jobs = FollowUpScheduler(
            self.data_dir, on_fire=self._fire, clock=self.clock, hours=self.hours,
            database_url=self.store.target.url,
        )  # fmt: skip
        self._jobs.start()
        with self._jobs_lock:
            self._job_chats = {job.chat_id for job in self._jobs.pending_all()}

    @property
    def jobs(self) -> FollowUpScheduler | None:
        """The follow-up jobs of the data dir (None without ``on_follow_up``)."""
        return self._jobs

    @property
    def firing(self) -> int:
        """Due follow-ups not done yet: waiting for their chat, or in their worker."""
        return len(self._fires)

    def _apply_jobs(self, ops: list[tuple[Any, ...]]) -> None:
        jobs = self._jobs
        if jobs is None or not ops:
            return
        for name, args, kwargs in ops:
            if name == "cancel":
                with self._jobs_lock:
                    known = args[0] in self._job_chats
                    self._job_chats.discard(args[0])
                if known:
                    jobs.cancel(args[0])
            else:
                with self._jobs_lock:
                    self._job_chats.add(args[0])
                jobs.schedule(*args, **kwargs)

    def _fire(self, fired: FiredFollowUp) -> None:
        # From APScheduler's thread (or run_due): the chat's worker runs it, in the chat's order,
        # once this runner owns the chat (the ownership's connection is the event loop's).
        with self._jobs_lock:
            self._job_chats.discard(fired.chat_id)
        loop = self._loop
        if loop is None or self._closed:
            return
        if _on_loop(loop):
            self._start_fire(fired)
        else:
            loop.call_soon_threadsafe(self._start_fire, fired)

    def _start_fire(self, fired: FiredFollowUp) -> None:
        task = asyncio.get_running_loop().create_task(self._fire_owned(fired), name="follow-up")
        self._fires.add(task)
        task.add_done_callback(self._fires.discard)

    async def _fire_owned(self, fired: FiredFollowUp) -> None:
        """Own the chat, let its worker fire the job (which drops it if the conversation moved
        on meanwhile: ``FollowUpService._still_valid``), let the chat go."""
        owner, chat = self._owner, fired.chat_id
        try:
            if owner is not None and not await self._own(owner, fired):
                return
            try:
                await self.call(chat, "fire", fired)
            finally:
                if owner is not None:
                    owner.release(chat)
        except Exception as exc:  # a task nobody awaits: say so, never lose a follow-up quietly
            log.error("event=follow_up_failed chat=%s kind=%s state=%s error=%s",
                      self._alias(chat), fired.kind, fired.state, exc)  # fmt: skip

    async def _own(self, owner: ChatOwnership, fired: FiredFollowUp) -> bool:
        """Wait until this runner owns the chat (True), or give up (False, logged).

        Another runner holds the chat while it runs a turn of hers (seconds; a minute with a
        slow model) or sends its replies (longer while WAHA is down and the sender backs off).
        A dead runner's hold ends with its session, so a hold that lasts is a live runner busy
        with her, most likely making this job stale. So after :attr:`own_wait_s` (minutes) the
        job is dropped with a warning: a stuck chat keeps no task here forever, and she gets no
        reminder that answers a conversation long gone. Closing the pool drops a waiting job
        the same way, logged (the job store has let it go already).
        """
        loop = asyncio.get_running_loop()
        began = loop.time()
        while True:
            if self._closed:
                why = "closing"
                break
            if owner.acquire(fired.chat_id):
                return True
            if loop.time() - began >= self.own_wait_s:
                why = "held"
                break
            await asyncio.sleep(self.own_retry_s)
        log.warning("event=follow_up_not_owned chat=%s kind=%s state=%s index=%s reason=%s "
                    "waited_s=%.1f", self._alias(fired.chat_id), fired.kind, fired.state,
                    fired.index, why, loop.time() - began)  # fmt: skip
        return False


def _hours(catalog: Catalog, clock: Clock) -> BusinessHours:
    from clinicflow.hours import BusinessHours

    return BusinessHours(catalog.clinic.hours, clock)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _first_message(conn: Connection, process: Any) -> tuple[Any, ...]:
    while not conn.poll(0.2):
        if not process.is_alive():
            return ("failed", f"exited with code {process.exitcode}")
    try:
        message: tuple[Any, ...] = conn.recv()
    except (EOFError, OSError) as exc:
        return ("failed", repr(exc))
    return message


class Turns(Protocol):
    """What the runner asks of its engines: :class:`EnginePool` or :class:`LocalEngine`."""

    @property
    def catalog(self) -> Catalog: ...

    @property
    def store(self) -> Store: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def data_dir(self) -> Path: ...

    @property
    def llm(self) -> Any: ...

    @property
    def hours(self) -> BusinessHours: ...

    async def handle(self, chat_id: str, text: str | None, **meta: Any) -> TurnResult: ...

    async def change(self, op: str, chat_id: str, *args: Any, **kwargs: Any) -> Any: ...

    async def reload(self, path: str | Path | None = None) -> Catalog: ...

    def health(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class LocalEngine:
    """The :class:`EnginePool` calls over an engine in this process (tests, examples).

    Turns run on a thread pool of their own (a slow turn never takes the default executor
    that the rest of the application uses); the engine's per-chat locks keep each chat in
    order.
    """

    def __init__(self, engine: Engine, *, threads: int = 32) -> None:
        self.engine = engine
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="turn")
        self._running: dict[int, float] = {}
        self._ids = itertools.count(1)
        self.stuck_after = 60.0

    @property
    def catalog(self) -> Catalog:
        return self.engine.catalog

    @property
    def store(self) -> Store:
        return self.engine.store

    @property
    def clock(self) -> Clock:
        return self.engine.clock

    @property
    def data_dir(self) -> Path:
        return self.engine.data_dir

    @property
    def llm(self) -> Any:
        return self.engine.llm

    @property
    def hours(self) -> BusinessHours:
        return self.engine.hours

    async def _run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        key = next(self._ids)
        self._running[key] = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        finally:
            del self._running[key]

    async def handle(self, chat_id: str, text: str | None, **meta: Any) -> TurnResult:
        result: TurnResult = await self._run(self.engine.handle, chat_id, text, **meta)
        return result

    async def change(self, op: str, chat_id: str, *args: Any, **kwargs: Any) -> Any:
        if op == "revoke_message":
            return await self._run(self.engine.store.revoke_message, chat_id, *args, **kwargs)
        if op not in OPS:
            raise ValueError(f"unknown operation {op!r}")
        return await self._run(getattr(self.engine, op), chat_id, *args, **kwargs)

    async def reload(self, path: str | Path | None = None) -> Catalog:
        return await self._run(self.engine.reload, path)

    def health(self) -> dict[str, Any]:
        oldest = max((time.monotonic() - t for t in self._running.values()), default=0.0)
        state = "stuck" if oldest > self.stuck_after else "ok"
        worker = {
            "worker": 0,
            "pid": os.getpid(),
            "state": state,
            "in_flight": len(self._running),
            "oldest_s": round(oldest, 1),
            "restarts": 0,
        }
        return {"status": state, "workers": [worker]}  # fmt: skip

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
