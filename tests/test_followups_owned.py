"""A due follow-up is fired only by a runner that owns its chat (several runners, one database).

The engine pool fires a job through the chat's worker while holding the chat's
:class:`~clinicflow.database.ChatOwnership`. A second ``ChatOwnership`` on the same database
stands for another runner working on that chat: while it holds the chat the follow-up waits;
once it lets go the follow-up fires once, or is dropped as stale when her message came in
meanwhile. On SQLite (one runner per data dir) every chat is owned: it fires at once.

The pool's clock is a :class:`~clinicflow.clock.ManualClock`: nothing fires by itself, the
tests move time with ``pool.jobs.advance_to(...)`` from a thread, like APScheduler's. One pool
(one worker process) per backend serves the whole module; each test has a chat and a week of
its own.
"""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from runner_harness import embedder, prebuilt, until  # noqa: F401

from clinicflow.clock import ManualClock
from clinicflow.database import ChatOwnership, resolve
from clinicflow.engine import TurnResult
from clinicflow.loader import load_catalog
from clinicflow.storage import Store
from clinicflow.workers import OWN_WAIT_S, EnginePool, EngineSpec

pytestmark = pytest.mark.asyncio(loop_scope="module")  # the module's pool lives on its loop

H = timedelta(hours=1)
TUESDAY_10H = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 10:00 in São Paulo: open
WEEK = timedelta(days=7)
BOAS_VINDAS_FU = "Ainda está por aí? Me conta como posso te chamar"
HELD = 1.2  # seconds the other runner keeps the chat (the pool tries every 0.5 s)


@dataclass
class Rig:
    backend: str
    pool: EnginePool
    clock: ManualClock
    owner: ChatOwnership  # this runner's
    other: ChatOwnership  # another runner's, on the same database
    sent: list[TurnResult] = field(default_factory=list)

    async def advance(self, until_: datetime) -> None:
        jobs = self.pool.jobs
        assert jobs is not None
        await asyncio.to_thread(jobs.advance_to, until_)

    def events(self, chat: str, type_: str) -> int:
        rows = self.pool.store.query(
            "SELECT id FROM events WHERE chat_id = ? AND type = ?", (chat, type_)
        )
        return len(rows)

    async def opened(self, chat: str, week: int) -> datetime:
        """She opens consulta_ginecologica on a Tuesday at 10:00 (``week`` weeks on):
        boas_vindas, one follow-up 2 h after the bot."""
        bot_at = TUESDAY_10H + week * WEEK
        assert bot_at >= self.clock.now()
        self.clock.set(bot_at)
        result = await self.pool.handle(chat, "quero passar com ginecologista")
        assert result.state == "boas_vindas" and result.replies
        jobs = self.pool.jobs
        assert jobs is not None
        job = jobs.pending(chat)
        assert job is not None and job.run_at == bot_at + 2 * H
        return bot_at


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def rig(
    module_backend: str, prebuilt: Path, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Rig]:
    """A pool of one worker on the module's backend (its worker inherits the database URL)."""
    data = tmp_path_factory.mktemp("owned") / "data"
    shutil.copytree(prebuilt, data)
    clock = ManualClock(TUESDAY_10H)
    store = Store(data)
    target = resolve(data)
    pool = EnginePool(EngineSpec(data), load_catalog(), store, clock=clock, workers=1)
    owner, other = ChatOwnership(target), ChatOwnership(target)
    try:
        await pool.start()
        r = Rig(module_backend, pool, clock, owner, other)
        pool.enable_follow_ups(r.sent.append, owner=owner)
        yield r
    finally:
        await pool.close()
        other.close()
        owner.close()
        store.close()


def only_postgres(r: Rig) -> None:
    if r.backend != "postgresql":
        pytest.skip("SQLite: one runner per data dir, every chat is owned (tested above)")


def follow_ups(r: Rig, chat: str) -> list[TurnResult]:
    return [s for s in r.sent if s.chat_id == chat and s.extra.get("kind") == "follow_up"]


async def test_a_due_follow_up_waits_while_another_runner_owns_the_chat(rig: Rig) -> None:
    r, chat = rig, "5511988880001@c.us"
    bot_at = await r.opened(chat, week=0)
    assert r.other.acquire(chat)  # another runner works on her chat (always True on SQLite)
    try:
        await r.advance(bot_at + 2 * H + timedelta(minutes=1))
        if r.backend == "sqlite":  # one runner per data dir: every chat is ours, as before
            await until(lambda: r.pool.firing == 0, 10)
            [sent] = follow_ups(r, chat)
            assert BOAS_VINDAS_FU in sent.replies[0]
            return
        assert r.pool.firing == 1  # due, and waiting for the chat
        await asyncio.sleep(HELD)  # the pool tried again meanwhile
        assert follow_ups(r, chat) == [] and r.pool.firing == 1
        assert r.events(chat, "follow_up_sent") == 0
        assert r.pool.health()["workers"][0]["in_flight"] == 0  # never sent to the worker
    finally:
        r.other.release(chat)
    await until(lambda: r.pool.firing == 0, 10)  # it let go: ours now, fired once
    [sent] = follow_ups(r, chat)
    assert BOAS_VINDAS_FU in sent.replies[0]
    assert r.events(chat, "follow_up_sent") == 1
    assert r.other.acquire(chat)  # and ours let go of it after firing
    r.other.release(chat)
    # Nothing fires twice: boas_vindas has one follow-up, then only the give-up job.
    await r.advance(bot_at + 30 * H)
    await until(lambda: r.pool.firing == 0, 10)
    assert len(follow_ups(r, chat)) == 1 and r.events(chat, "follow_up_sent") == 1
    assert r.events(chat, "lead_lost") == 1


async def test_her_message_during_the_wait_makes_the_follow_up_stale(rig: Rig) -> None:
    r, chat = rig, "5511988880002@c.us"
    only_postgres(r)
    bot_at = await r.opened(chat, week=1)
    assert r.other.acquire(chat)
    try:
        await r.advance(bot_at + 2 * H + timedelta(minutes=1))
        assert r.pool.firing == 1
        # The other runner's turn of hers (same database): the conversation moves on.
        answered = await r.pool.handle(chat, "Ana")
        assert answered.state == "pergunta_motivo"
        await asyncio.sleep(HELD)
        assert r.pool.firing == 1 and follow_ups(r, chat) == []
    finally:
        r.other.release(chat)
    await until(lambda: r.pool.firing == 0, 10)  # fired in the worker, judged stale there
    assert follow_ups(r, chat) == [] and r.events(chat, "follow_up_sent") == 0
    jobs = r.pool.jobs
    assert jobs is not None
    job = jobs.pending(chat)  # her new state's own follow-up, untouched
    assert job is not None and job.state == "pergunta_motivo"
    await r.advance(job.run_at + timedelta(minutes=1))
    await until(lambda: r.pool.firing == 0, 10)
    [sent] = follow_ups(r, chat)
    assert BOAS_VINDAS_FU not in sent.replies[0]
    assert r.events(chat, "follow_up_sent") == 1


async def test_a_chat_held_too_long_drops_the_follow_up_with_a_warning(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    r, chat = rig, "5511988880003@c.us"
    only_postgres(r)
    bot_at = await r.opened(chat, week=2)
    assert r.other.acquire(chat)
    r.pool.own_wait_s = 0.8  # minutes in the runner
    try:
        with caplog.at_level(logging.WARNING, logger="clinicflow.workers"):
            await r.advance(bot_at + 2 * H + timedelta(minutes=1))
            await until(lambda: r.pool.firing == 0, 10)
    finally:
        r.pool.own_wait_s = OWN_WAIT_S
        r.other.release(chat)
    [line] = [m for m in caplog.messages if "event=follow_up_not_owned" in m]
    assert "reason=held" in line and "state=boas_vindas" in line
    assert "88880003" not in line  # no phone number in the log
    await asyncio.sleep(0.6)
    assert follow_ups(r, chat) == [] and r.events(chat, "follow_up_sent") == 0
