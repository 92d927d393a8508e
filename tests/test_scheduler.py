from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinicflow.clock import ManualClock, SystemClock, iso
from clinicflow.hours import BusinessHours
from clinicflow.loader import bundled_catalog_path, load_clinic
from clinicflow.scheduler import FiredFollowUp, FollowUpScheduler, fire_follow_up, job_id
from clinicflow.storage import DB_NAME, Store

SP = ZoneInfo("America/Sao_Paulo")
START = datetime(2026, 11, 24, 10, 0, tzinfo=SP)  # a Tuesday morning, clinic open


class Recorder:
    """An ``on_fire`` callback that remembers what fired (thread-safe)."""

    def __init__(self) -> None:
        self.fired: list[FiredFollowUp] = []
        self.event = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, fired: FiredFollowUp) -> None:
        with self._lock:
            self.fired.append(fired)
        self.event.set()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture(scope="module")
def hours() -> BusinessHours:
    return BusinessHours(load_clinic(bundled_catalog_path() / "clinic.yaml").hours)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def scheduler(
    tmp_path: Path, clock: ManualClock, recorder: Recorder
) -> Iterator[FollowUpScheduler]:
    with FollowUpScheduler(tmp_path, on_fire=recorder, clock=clock) as running:
        yield running


def test_schedule_pending_and_fire_once(
    scheduler: FollowUpScheduler, clock: ManualClock, recorder: Recorder
) -> None:
    assert not scheduler.autorun
    at = START + timedelta(hours=2)
    scheduler.schedule(
        "5511@c.us", at, "duvidas", 0, "abc", since=START, deadline=START + timedelta(hours=24)
    )
    pending = scheduler.pending("5511@c.us")
    assert pending is not None
    assert (pending.state, pending.index, pending.digest, pending.kind) == (
        "duvidas",
        0,
        "abc",
        "follow_up",
    )
    assert pending.run_at == at
    assert scheduler.run_due() == []  # not due yet
    clock.advance(timedelta(hours=3))
    fired = scheduler.run_due()
    assert [f.chat_id for f in fired] == ["5511@c.us"]
    assert fired[0].since == iso(START)
    assert fired[0].run_at == at
    assert fired[0].fired_at == clock.now()
    assert fired[0].dropped is None
    assert recorder.fired == fired
    assert scheduler.run_due() == []
    assert scheduler.pending("5511@c.us") is None


def test_survives_a_restart(tmp_path: Path, clock: ManualClock, recorder: Recorder) -> None:
    at = START + timedelta(hours=2)
    first = FollowUpScheduler(tmp_path, on_fire=recorder, clock=clock)
    first.start()
    first.schedule("a", at, "duvidas", 1, "d1", since="2026-11-24T13:00:00.000+00:00")
    first.shutdown()
    assert not first.running

    with FollowUpScheduler(tmp_path, on_fire=recorder, clock=clock) as second:
        pending = second.pending("a")
        assert pending is not None
        assert (pending.index, pending.run_at) == (1, at)
        clock.advance(timedelta(hours=5))  # the time passed while it was down
    with FollowUpScheduler(tmp_path, on_fire=recorder, clock=clock) as third:
        fired = third.run_due()
        assert [(f.chat_id, f.index, f.since) for f in fired] == [
            ("a", 1, "2026-11-24T13:00:00.000+00:00")
        ]
        assert third.run_due() == []
    with FollowUpScheduler(tmp_path, on_fire=recorder, clock=clock) as fourth:
        assert fourth.pending_all() == []
        assert fourth.run_due() == []
    assert len(recorder.fired) == 1


def test_missed_while_down_fires_once_on_start_in_real_time(tmp_path: Path) -> None:
    recorder = Recorder()
    first = FollowUpScheduler(tmp_path, on_fire=recorder)
    first.start()
    assert first.autorun
    now = datetime.now(UTC)
    first.schedule("b", now + timedelta(seconds=0.2), "duvidas", 0, "d", since=now)
    first.shutdown()
    time.sleep(0.3)
    assert recorder.fired == []

    second = FollowUpScheduler(tmp_path, on_fire=recorder, clock=SystemClock())
    second.start()
    try:
        assert recorder.event.wait(2.0)
        time.sleep(0.1)
        assert [f.chat_id for f in recorder.fired] == ["b"]
        assert recorder.fired[0].dropped is None
        assert recorder.fired[0].fired_at > recorder.fired[0].run_at
        assert second.pending("b") is None
    finally:
        second.shutdown()
    with FollowUpScheduler(tmp_path, on_fire=recorder) as third:
        time.sleep(0.1)
        assert third.pending_all() == []
    assert len(recorder.fired) == 1


def test_real_time_fires_on_time(tmp_path: Path) -> None:
    recorder = Recorder()
    with FollowUpScheduler(tmp_path, on_fire=recorder) as running:
        running.schedule("c", datetime.now(UTC) + timedelta(seconds=0.3), "duvidas", 0, "d")
        assert running.pending("c") is not None
        assert recorder.event.wait(2.0)
        assert [f.chat_id for f in recorder.fired] == ["c"]


def test_missed_beyond_the_window_is_dropped(
    tmp_path: Path, clock: ManualClock, recorder: Recorder
) -> None:
    deadline = START + timedelta(hours=24)
    with FollowUpScheduler(tmp_path, on_fire=recorder, clock=clock) as first:
        first.schedule("d", START + timedelta(hours=20), "duvidas", 1, "x", deadline=deadline)
    clock.set(START + timedelta(hours=30))  # the process was down through the window's end
    with FollowUpScheduler(tmp_path, on_fire=recorder, clock=clock) as second:
        fired = second.run_due()
    assert [(f.chat_id, f.dropped) for f in fired] == [("d", "window")]


def test_missed_into_closed_hours_moves_to_the_next_opening(
    tmp_path: Path, clock: ManualClock, recorder: Recorder, hours: BusinessHours
) -> None:
    deadline = START + timedelta(hours=24)  # Wednesday 10:00
    with FollowUpScheduler(tmp_path, on_fire=recorder, clock=clock, hours=hours) as first:
        first.schedule("e", START + timedelta(hours=7), "duvidas", 0, "x", deadline=deadline)
        clock.set(datetime(2026, 11, 24, 22, 0, tzinfo=SP))  # came back up at night
        assert first.run_due() == []
        pending = first.pending("e")
        assert pending is not None
        assert pending.run_at == datetime(2026, 11, 25, 8, 0, tzinfo=SP)
        fired = first.advance_to(datetime(2026, 11, 25, 9, 0, tzinfo=SP))
    assert [(f.chat_id, f.fired_at, f.dropped) for f in fired] == [
        ("e", datetime(2026, 11, 25, 8, 0, tzinfo=SP), None)
    ]


def test_cancel(scheduler: FollowUpScheduler, clock: ManualClock) -> None:
    scheduler.schedule("f", START + timedelta(hours=2), "duvidas", 0, "x")
    scheduler.schedule("g", START + timedelta(hours=2), "duvidas", 0, "x")
    assert scheduler.cancel("f")
    assert not scheduler.cancel("f")
    assert not scheduler.cancel("never")
    assert scheduler.pending("f") is None
    clock.advance(timedelta(hours=3))
    assert [f.chat_id for f in scheduler.run_due()] == ["g"]


def test_replacing_keeps_one_per_chat(scheduler: FollowUpScheduler, clock: ManualClock) -> None:
    scheduler.schedule("h", START + timedelta(hours=2), "duvidas", 0, "x")
    scheduler.schedule("h", START + timedelta(hours=4), "valor", 1, "y", kind="give_up")
    jobs = scheduler.pending_all()
    assert len(jobs) == 1
    assert (jobs[0].state, jobs[0].index, jobs[0].kind) == ("valor", 1, "give_up")
    clock.advance(timedelta(hours=5))
    assert [(f.state, f.kind) for f in scheduler.run_due()] == [("valor", "give_up")]


def test_advance_to_fires_in_order_with_the_clock_at_each_job(
    tmp_path: Path, clock: ManualClock
) -> None:
    seen: list[tuple[str, int, datetime]] = []

    def on_fire(fired: FiredFollowUp) -> None:
        seen.append((fired.chat_id, fired.index, clock.now()))
        if fired.index == 0:  # the engine would send, then plan the next one from now
            running.schedule(fired.chat_id, clock.now() + timedelta(hours=20), fired.state, 1, "x")

    with FollowUpScheduler(tmp_path, on_fire=on_fire, clock=clock) as running:
        running.schedule("i", START + timedelta(hours=2), "duvidas", 0, "x")
        running.schedule("j", START + timedelta(hours=1), "duvidas", 5, "x")
        fired = running.advance_to(START + timedelta(hours=25))
        assert clock.now() == START + timedelta(hours=25)
        assert running.pending_all() == []
    assert [(f.chat_id, f.index) for f in fired] == [("j", 5), ("i", 0), ("i", 1)]
    assert seen == [
        ("j", 5, START + timedelta(hours=1)),
        ("i", 0, START + timedelta(hours=2)),
        ("i", 1, START + timedelta(hours=22)),
    ]


def test_run_due_fires_what_firing_schedules_when_already_due(
    tmp_path: Path, clock: ManualClock
) -> None:
    def on_fire(fired: FiredFollowUp) -> None:
        if fired.kind == "follow_up":
            running.schedule(fired.chat_id, fired.fired_at, fired.state, 0, "x", kind="give_up")

    with FollowUpScheduler(tmp_path, on_fire=on_fire, clock=clock) as running:
        running.schedule("k", START, "duvidas", 0, "x")
        fired = running.run_due()
        assert clock.now() == START
    assert [f.kind for f in fired] == ["follow_up", "give_up"]


def test_jobs_live_beside_the_history(tmp_path: Path, clock: ManualClock) -> None:
    store = Store(tmp_path)
    try:
        with FollowUpScheduler(tmp_path, on_fire=Recorder(), clock=clock) as running:
            running.schedule("l", START + timedelta(hours=1), "duvidas", 0, "x")
    finally:
        store.close()
    conn = sqlite3.connect(tmp_path / DB_NAME)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        ids = [row[0] for row in conn.execute("SELECT id FROM apscheduler_jobs")]
    finally:
        conn.close()
    assert {"apscheduler_jobs", "conversations"} <= tables
    assert ids == [job_id("l")]


def test_one_scheduler_per_data_dir(tmp_path: Path, scheduler: FollowUpScheduler) -> None:
    with pytest.raises(RuntimeError, match="already runs"):
        FollowUpScheduler(tmp_path, on_fire=Recorder()).start()
    other = tmp_path / "other"
    with FollowUpScheduler(other, on_fire=Recorder(), autorun=False) as second:
        assert second.running


def test_misuse(tmp_path: Path) -> None:
    idle = FollowUpScheduler(tmp_path, on_fire=Recorder())
    with pytest.raises(RuntimeError, match="start"):
        idle.schedule("m", datetime.now(UTC), "s", 0, "x")
    with pytest.raises(RuntimeError, match="start"):
        idle.pending("m")
    with FollowUpScheduler(tmp_path, on_fire=Recorder()) as running:
        with pytest.raises(RuntimeError, match="settable clock"):
            running.advance_to(datetime.now(UTC))
        with pytest.raises(ValueError, match="aware"):
            running.schedule("m", datetime(2026, 11, 24, 10, 0), "s", 0, "x")


def test_a_job_without_its_scheduler_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fire_follow_up(scheduler="/nowhere", chat_id="n", run_at="2026-11-24T13:00:00.000+00:00")
    assert "no running scheduler" in caplog.text


def test_the_job_store_connection_runs_like_every_other_one(tmp_path: Path) -> None:
    from sqlalchemy import text

    from clinicflow.scheduler import _engine

    engine = _engine(f"sqlite:///{tmp_path / 'clinicflow.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL, not FULL
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    engine.dispose()
