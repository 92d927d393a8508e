"""The durable follow-up scheduler: at most one pending job per chat, surviving restarts.

:class:`FollowUpScheduler` keeps jobs in APScheduler 3's SQLAlchemy job store, in the project's
SQLite file (table ``apscheduler_jobs``), or in the clinic's PostgreSQL database when
``CLINICFLOW_DATABASE_URL`` points there (:mod:`clinicflow.database`). Two ways to fire them:

- ``autorun=True`` (the runner, real time): APScheduler's own thread fires due jobs; jobs
  missed while the process was down fire once on start (coalesced, no grace limit) and are
  re-checked at that moment against WhatsApp's window (``dropped="window"``) and the opening
  hours (moved to the next opening).
- ``autorun=False`` (tests, ``clinicflow simulate``): nothing fires by itself;
  :meth:`~FollowUpScheduler.run_due` and :meth:`~FollowUpScheduler.advance_to` fire due jobs
  in order, in the caller's thread, deterministically.

Jobs are stored as ``clinicflow.scheduler:fire_follow_up`` with plain keyword arguments. That
function finds the running scheduler of the job's data directory in a small process registry
(filled by :meth:`~FollowUpScheduler.start`, emptied by :meth:`~FollowUpScheduler.shutdown`),
because APScheduler can store importable functions only, not bound methods or clients.
Within a process a job never fires twice; across a crash in the instant between firing and
removal, ``FiredFollowUp.since`` lets the callback recognise a job already acted on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from clinicflow.clock import Clock, SystemClock, iso
from clinicflow.database import resolve
from clinicflow.errors import StorageError

if TYPE_CHECKING:
    from apscheduler.job import Job
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    from clinicflow.hours import BusinessHours

__all__ = [
    "FiredFollowUp",
    "FollowUpScheduler",
    "JobKind",
    "PendingFollowUp",
    "fire_follow_up",
    "job_id",
]

log = logging.getLogger(__name__)

JobKind = Literal["follow_up", "give_up"]


@dataclass(frozen=True)
class PendingFollowUp:
    """A job waiting in the store."""

    chat_id: str
    kind: JobKind
    state: str
    index: int
    digest: str
    since: str
    run_at: datetime


@dataclass(frozen=True)
class FiredFollowUp:
    """A job that came due, handed to the scheduler's ``on_fire`` callback.

    ``since`` is the ISO instant of the bot message the job was planned from (the
    conversation's ``last_outbound_at`` when it was scheduled): if the conversation's
    ``last_outbound_at`` differs now, something else was sent since and the job is stale.
    ``dropped`` is ``"window"`` when the job fired (after a restart) too late to be sent:
    record it, do not send.
    """

    chat_id: str
    kind: JobKind
    state: str
    index: int
    digest: str
    since: str
    run_at: datetime
    fired_at: datetime
    dropped: Literal["window"] | None = None


OnFire = Callable[[FiredFollowUp], None]

LEAD_RETRY_S = 2.0  # PostgreSQL: how often a runner that does not fire jobs tries to lead

_RUNNING: dict[str, FollowUpScheduler] = {}
_RUNNING_LOCK = threading.Lock()


def job_id(chat_id: str) -> str:
    """The one job id of a chat: scheduling again replaces its pending job."""
    return f"followup:{chat_id}"


def fire_follow_up(**job: Any) -> None:
    """The stored job function: hands a due job to the running scheduler of its data dir."""
    with _RUNNING_LOCK:
        scheduler = _RUNNING.get(str(job.get("scheduler")))
        if scheduler is None and len(_RUNNING) == 1:
            # One job store shared by several runners (PostgreSQL): a job another runner
            # (another data dir) scheduled fires in the runner that leads the firing.
            only = next(iter(_RUNNING.values()))
            scheduler = only if only.target.is_postgres else None
    if scheduler is None:
        log.error("follow-up for %s fired with no running scheduler; dropped", job.get("chat_id"))
        return
    scheduler._dispatch(job, _parse(job["run_at"]), scheduler.clock.now())


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class FollowUpScheduler:
    """At most one pending follow-up job per chat, persisted in the project's SQLite file.

    Args:
        data_dir: the data directory; jobs live in its ``clinicflow.db`` (or the database of
            ``database_url``, :func:`clinicflow.database.resolve`), table
            ``apscheduler_jobs``.
        on_fire: called with each :class:`FiredFollowUp` that comes due. With ``autorun``
            it runs in APScheduler's worker threads, so it must be thread-safe; it may call
            :meth:`schedule` and :meth:`cancel`.
        clock: the time source; default the system clock.
        hours: business hours, to re-check jobs that fire late (after a restart) while the
            clinic is closed: they move to the next opening if the window allows.
        autorun: let APScheduler fire jobs in real time (default: only with the system
            clock); otherwise only :meth:`run_due` and :meth:`advance_to` fire them.
        database_url: where the jobs live (default: ``$CLINICFLOW_DATABASE_URL``, else the
            data directory's SQLite file).

    Use :meth:`start` before anything else and :meth:`shutdown` at the end (or ``with``).
    """

    def __init__(
        self,
        data_dir: str | Path,
        *,
        on_fire: OnFire,
        clock: Clock | None = None,
        hours: BusinessHours | None = None,
        autorun: bool | None = None,
        database_url: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.key = str(self.data_dir.resolve())
        self.target = resolve(self.data_dir, database_url)
        self.url = self.target.sqlalchemy_url
        self.on_fire = on_fire
        self.clock: Clock = clock or SystemClock()
        self.hours = hours
        self.autorun = isinstance(self.clock, SystemClock) if autorun is None else autorun
        self._scheduler: BackgroundScheduler | None = None
        self._store: SQLAlchemyJobStore | None = None
        self._claimed: dict[tuple[str, ...], None] = {}
        self._lock = threading.RLock()
        self._pass = threading.Lock()  # held while APScheduler's thread processes due jobs
        self._idle = threading.Condition()
        self._in_flight = 0  # jobs submitted to the executor and not finished
        self._leader_conn: Any = None  # PostgreSQL: the session holding the firing lock
        self._leader_stop: threading.Event | None = None

    # -- life cycle -------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._scheduler is not None

    def start(self) -> None:
        """Open the job store and (with ``autorun``) fire overdue jobs once, then on time.

        Raises:
            StorageError: the job store cannot be opened.
            RuntimeError: another scheduler of this data directory runs in this process.
        """
        from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_SUBMITTED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        # APScheduler logs every add/remove at INFO: one line per turn, with the chat id.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
        with _RUNNING_LOCK:
            if self.key in _RUNNING:
                raise RuntimeError(f"a follow-up scheduler already runs for {self.key}")
            _RUNNING[self.key] = self
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            engine = _engine(self.url, postgres=self.target.is_postgres)
            self._store = SQLAlchemyJobStore(engine=engine, tablename="apscheduler_jobs")
            self._scheduler = _quiet_when_stopped(BackgroundScheduler, self._pass)(
                timezone=UTC,
                jobstores={"default": self._store},
                executors={"default": ThreadPoolExecutor(4)},
                # Missed while down: run once, however late; _dispatch re-checks the window.
                job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 4},
            )
            events = EVENT_JOB_SUBMITTED | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR
            self._scheduler.add_listener(self._count, events)
            leading = self._lead() if self.autorun else False
            self._scheduler.start(paused=not leading)
        except Exception as exc:
            self._forget()
            raise StorageError(
                f"cannot open the follow-up job store {self.target.redacted}: {exc}"
            ) from exc

    def _lead(self) -> bool:
        """Whether this scheduler fires jobs. SQLite: always (one runner per data dir).

        PostgreSQL: the job store is shared by every runner of the database, and APScheduler 3
        must not run two schedulers on one store; the runner that holds a session advisory
        lock fires, the others only add and remove jobs, and try for the lock every
        :data:`LEAD_RETRY_S` (a dead leader's session, and its lock, end with it).
        """
        if not self.target.is_postgres:
            return True
        import psycopg

        self._leader_conn = psycopg.connect(self.target.url, autocommit=True)
        if self._try_lead():
            return True
        self._leader_stop = threading.Event()
        threading.Thread(target=self._wait_to_lead, name="follow-ups:lead", daemon=True).start()
        return False

    def _try_lead(self) -> bool:
        conn = self._leader_conn
        if conn is None or conn.closed:
            return False
        row = conn.execute(
            "SELECT pg_try_advisory_lock(hashtext(current_schema() || ':clinicflow-jobs'))"
        ).fetchone()
        return bool(row and row[0])

    def _wait_to_lead(self) -> None:
        stop = self._leader_stop
        while stop is not None and not stop.wait(LEAD_RETRY_S):
            with self._lock:
                if self._scheduler is None:
                    return
                if self._try_lead():
                    self._scheduler.resume()
                    log.warning("follow-up jobs: this runner fires them now")
                    return

    def shutdown(self, wait: bool = True) -> None:
        """Stop firing and close the job store; pending jobs stay stored for the next start."""
        if self._leader_stop is not None:
            self._leader_stop.set()
        scheduler = self._scheduler
        if scheduler is not None:
            # APScheduler 3 marks itself stopped before its loop lets go of a job it fired, and
            # then cannot remove it (it would fire again on the next start). So: stop taking
            # jobs, let the pass under way finish, let fired jobs finish (what their callbacks
            # schedule is stored), then shut down.
            scheduler.pause()
            with self._pass:
                pass
            with self._idle:
                self._idle.wait_for(lambda: self._in_flight <= 0, timeout=30.0 if wait else 0)
            scheduler.shutdown(wait=wait)
        if self._leader_conn is not None:
            self._leader_conn.close()  # lets another runner lead
            self._leader_conn = None
        self._forget()

    def _count(self, event: Any) -> None:
        from apscheduler.events import EVENT_JOB_SUBMITTED

        with self._idle:
            self._in_flight += 1 if event.code == EVENT_JOB_SUBMITTED else -1
            self._idle.notify_all()

    def _forget(self) -> None:
        self._scheduler = self._store = None
        with _RUNNING_LOCK:
            if _RUNNING.get(self.key) is self:
                del _RUNNING[self.key]

    def __enter__(self) -> FollowUpScheduler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def _running(self) -> BackgroundScheduler:
        if self._scheduler is None:
            raise RuntimeError("start() the FollowUpScheduler first")
        return self._scheduler

    # -- jobs -------------------------------------------------------------------------------

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
        """Store the chat's job, replacing the one it had.

        Args:
            chat_id: the conversation.
            fire_at: when to fire (aware; a plan's ``fire_at``).
            state: the state whose follow-up it is.
            index: which of the state's follow-ups.
            script_digest: the script version the conversation is pinned to.
            since: the bot message it answers to (the conversation's ``last_outbound_at``).
            deadline: the end of WhatsApp's window (a plan's ``window_ends_at``).
            kind: ``"follow_up"``, or ``"give_up"`` to mark the lead lost.
        """
        from apscheduler.triggers.date import DateTrigger

        if fire_at.tzinfo is None:
            raise ValueError("fire_at must be an aware datetime")
        args = {
            "scheduler": self.key,
            "chat_id": chat_id,
            "kind": kind,
            "state": state,
            "index": int(index),
            "digest": script_digest,
            "since": iso(since) if isinstance(since, datetime) else since or "",
            "deadline": iso(deadline) if deadline is not None else "",
            "run_at": iso(fire_at),
        }
        self._running().add_job(
            fire_follow_up,
            DateTrigger(run_date=fire_at.astimezone(UTC), timezone=UTC),
            id=job_id(chat_id),
            name=f"{kind} {chat_id} {state}#{index}",
            kwargs=args,
            replace_existing=True,
        )

    def cancel(self, chat_id: str) -> bool:
        """Remove the chat's pending job; False when it had none."""
        from apscheduler.jobstores.base import JobLookupError

        try:
            self._running().remove_job(job_id(chat_id))
        except JobLookupError:
            return False
        return True

    def pending(self, chat_id: str) -> PendingFollowUp | None:
        """The chat's pending job, if any."""
        job = self._running().get_job(job_id(chat_id))
        return _pending(job) if job is not None else None

    def pending_all(self) -> list[PendingFollowUp]:
        """Every pending job, soonest first."""
        return [_pending(job) for job in self._running().get_jobs()]

    # -- firing -----------------------------------------------------------------------------

    def run_due(self, now: datetime | None = None) -> list[FiredFollowUp]:
        """Fire, in order and in this thread, every job due at ``now`` (default: the clock).

        Jobs that firing schedules are fired too when already due. The clock is not moved.
        An exception from ``on_fire`` propagates; the job it was given is gone from the store.
        """
        now = now or self.clock.now()
        fired: list[FiredFollowUp] = []
        while (job := self._take_due(now)) is not None:
            fired += self._dispatch(job.kwargs, job.next_run_time, now)
        return fired

    def advance_to(self, until: datetime) -> list[FiredFollowUp]:
        """Move a settable clock (:class:`~clinicflow.clock.ManualClock`) to ``until``.

        On the way the clock stops at each due job's time and fires it, so a follow-up that
        schedules the next one sees the right "now" (``wait: 25h`` in ``simulate``).
        """
        setter = getattr(self.clock, "set", None)
        if not callable(setter):
            raise RuntimeError("advance_to needs a settable clock such as ManualClock")
        fired: list[FiredFollowUp] = []
        while (job := self._take_due(until)) is not None:
            if job.next_run_time > self.clock.now():
                setter(job.next_run_time)
            fired += self._dispatch(job.kwargs, job.next_run_time, self.clock.now())
        if until > self.clock.now():
            setter(until)
        return fired

    def _take_due(self, now: datetime) -> Job | None:
        """Remove and return the earliest job due at ``now`` (None: nothing is due)."""
        from apscheduler.jobstores.base import JobLookupError

        scheduler, store = self._running(), self._store
        assert store is not None
        with self._lock:
            for job in store.get_due_jobs(now.astimezone(UTC)):
                try:
                    scheduler.remove_job(job.id)
                except JobLookupError:  # fired by APScheduler meanwhile
                    continue
                return job
        return None

    def _dispatch(
        self, job: dict[str, Any], run_at: datetime, now: datetime
    ) -> list[FiredFollowUp]:
        """Check a due job against the window and the hours, then hand it to ``on_fire``."""
        key = tuple(str(job.get(k, "")) for k in ("chat_id", "kind", "state", "since", "run_at"))
        with self._lock:
            if key in self._claimed:  # already fired in this process: never twice
                return []
            self._claimed[key] = None
            while len(self._claimed) > 1000:
                del self._claimed[next(iter(self._claimed))]
        dropped: Literal["window"] | None = None
        deadline = _parse(job["deadline"]) if job.get("deadline") else None
        if job["kind"] == "follow_up" and deadline is not None and now >= deadline:
            dropped = "window"
        elif job["kind"] == "follow_up" and self.hours is not None and not self.hours.is_open(now):
            opening = self.hours.next_opening(now)
            if deadline is None or opening < deadline:
                args = (job["chat_id"], opening, job["state"], job["index"], job["digest"])
                self.schedule(*args, since=job["since"], deadline=deadline, kind=job["kind"])
                return []
            dropped = "window"
        fired = FiredFollowUp(
            chat_id=job["chat_id"],
            kind=job["kind"],
            state=job["state"],
            index=int(job["index"]),
            digest=job["digest"],
            since=job["since"],
            run_at=run_at.astimezone(UTC),
            fired_at=now.astimezone(UTC),
            dropped=dropped,
        )
        self.on_fire(fired)
        return [fired]


def _engine(url: str, *, postgres: bool = False) -> Any:
    """SQLAlchemy's engine on the clinic's file with the settings of every other connection
    (WAL, ``synchronous=NORMAL``, a busy timeout): left alone it runs ``synchronous=FULL``,
    an fsync per job written. On PostgreSQL (psycopg 3): a small pool, nothing to tune."""
    from sqlalchemy import create_engine, event

    if postgres:
        return create_engine(url, pool_size=2, max_overflow=2, pool_pre_ping=True)
    engine = create_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=30000"):
            dbapi_connection.execute(f"PRAGMA {pragma}")

    return engine


def _quiet_when_stopped(
    base: type[BackgroundScheduler], lock: threading.Lock
) -> type[BackgroundScheduler]:
    """APScheduler 3 that processes jobs only while running, each pass under ``lock``.

    On shutdown, 3.11's loop wakes once more after the executors are closed and would submit
    due jobs to a closed executor, then delete them from the store: a follow-up lost. Paused
    (clock-driven) schedulers would lose every job due in real time that way.
    """
    from apscheduler.schedulers.base import STATE_RUNNING

    class Scheduler(base):
        def _process_jobs(self) -> float | None:
            with lock:
                if self.state != STATE_RUNNING:
                    return None
                return cast("float | None", super()._process_jobs())

    return Scheduler


def _pending(job: Job) -> PendingFollowUp:
    args = job.kwargs
    return PendingFollowUp(
        chat_id=args["chat_id"],
        kind=args["kind"],
        state=args["state"],
        index=int(args["index"]),
        digest=args["digest"],
        since=args["since"],
        run_at=job.next_run_time.astimezone(UTC),
    )
