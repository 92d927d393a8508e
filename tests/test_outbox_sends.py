"""Sends that cannot repeat and back-offs that end when WAHA returns (clinicflow.outbox)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from clinicflow.database import ChatOwnership, resolve
from clinicflow.outbox import Backoff, Outbox, OutMessage, Sender
from clinicflow.storage import connect
from clinicflow.testing.fake_waha import FakeWaha
from clinicflow.waha import WahaClient

CHAT = "5511988887777@c.us"


@pytest.fixture
async def waha() -> AsyncIterator[FakeWaha]:
    async with FakeWaha() as fake:
        yield fake


def _outbox(tmp_path: Path) -> Outbox:
    return Outbox(connect(tmp_path / "clinicflow.db"))


async def _until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def test_fake_waha_keeps_one_message_per_pregenerated_id(waha: FakeWaha) -> None:
    async with WahaClient(waha.url) as client:
        first = await client.send_text(CHAT, "oi", message_id="3EB0AAAABBBBCCCCDDDD")
        again = await client.send_text(CHAT, "oi", message_id="3EB0AAAABBBBCCCCDDDD")
        other = await client.send_text(CHAT, "oi")
    assert first == again and first is not None and first.endswith("3EB0AAAABBBBCCCCDDDD")
    assert other != first
    assert len(waha.sent) == 2
    assert waha.repeated_ids == ["3EB0AAAABBBBCCCCDDDD"]


async def test_rows_get_their_message_id_when_stored(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path)
    outbox.enqueue([OutMessage(CHAT, "um"), OutMessage(CHAT, "dois")])
    ids = [r[0] for r in outbox.conn.execute("SELECT client_id FROM outbox ORDER BY id")]
    assert len(set(ids)) == 2 and all(i.startswith("3EB0") and len(i) == 20 for i in ids)


async def test_a_late_answer_is_retried_under_the_same_id_and_sent_once(
    waha: FakeWaha, tmp_path: Path
) -> None:
    outbox = _outbox(tmp_path)
    waha.answer_delay_s = 0.5  # WAHA accepts, then answers after the client gave up
    events: list[str] = []
    async with WahaClient(waha.url, timeout_s=0.2) as client:
        sender = Sender(
            outbox, client, typing_delay_max=0, backoff=Backoff(0.05, 0.1),
            on_event=lambda name, fields: events.append(name),
        )  # fmt: skip
        outbox.enqueue([OutMessage(CHAT, "Olá! Como posso ajudar?")])
        sender.kick(CHAT)
        await _until(lambda: "retry" in events)
        waha.answer_delay_s = 0
        await _until(lambda: outbox.depth() == 0)
        await sender.close()
    assert [m["text"] for m in waha.sent] == ["Olá! Como posso ajudar?"]
    assert len(waha.repeated_ids) >= 1
    sent_id = outbox.conn.execute("SELECT client_id FROM outbox").fetchone()[0]
    assert waha.sent[0]["id"] == sent_id


async def test_a_crash_after_wahas_answer_resends_the_same_message_id(
    waha: FakeWaha, tmp_path: Path
) -> None:
    outbox = _outbox(tmp_path)
    outbox.enqueue([OutMessage(CHAT, "Seu horário foi anotado.")])
    row = outbox.next_for(CHAT)
    assert row is not None
    async with WahaClient(waha.url) as client:
        # The previous process sent it, WAHA said 201, and the process died before the mark.
        await client.send_text(CHAT, row.text, message_id=row.client_id)
        restarted = Sender(outbox, client, typing_delay_max=0)
        restarted.kick_all()
        await _until(lambda: outbox.depth() == 0)
        await restarted.close()
    assert len(waha.sent) == 1
    assert waha.repeated_ids == [row.client_id]


async def test_wahas_return_cuts_a_long_backoff_short(waha: FakeWaha, tmp_path: Path) -> None:
    outbox = _outbox(tmp_path)
    events: list[str] = []
    async with WahaClient(waha.url, timeout_s=1) as client:

        async def working() -> bool:
            return await client.session_status() == "WORKING"

        sender = Sender(
            outbox, client, typing_delay_max=0, backoff=Backoff(60, 60),
            on_event=lambda name, fields: events.append(name), probe=working, probe_every=0.05,
        )  # fmt: skip
        await waha.down()
        outbox.enqueue([OutMessage(CHAT, "Já volto a falar com você.")])
        sender.kick(CHAT)
        await _until(lambda: "retry" in events)
        await asyncio.sleep(0.2)  # the probe sees WAHA away
        await waha.up()
        back = time.monotonic()
        await _until(lambda: outbox.depth() == 0, timeout=5)
        took = time.monotonic() - back
        await sender.close()
    assert took < 3.0, f"first reply {took:.1f}s after WAHA came back (back-off was 60 s)"
    assert "recovered" in events
    assert [m["text"] for m in waha.sent] == ["Já volto a falar com você."]


async def test_a_wahas_refusing_sends_while_up_keeps_its_backoff(
    waha: FakeWaha, tmp_path: Path
) -> None:
    outbox = _outbox(tmp_path)
    events: list[str] = []
    async with WahaClient(waha.url) as client:

        async def working() -> bool:
            return await client.session_status() == "WORKING"

        sender = Sender(
            outbox, client, typing_delay_max=0, backoff=Backoff(60, 60),
            on_event=lambda name, fields: events.append(name), probe=working, probe_every=0.05,
        )  # fmt: skip
        waha.fail_next(1, 500, path="/api/sendText")
        outbox.enqueue([OutMessage(CHAT, "oi")])
        sender.kick(CHAT)
        await _until(lambda: "retry" in events)
        await asyncio.sleep(0.3)
        await sender.close()
    assert waha.sent == [] and "recovered" not in events


@pytest.mark.usefixtures("backend")  # SQLite and PostgreSQL (conftest.py)
async def test_a_row_waiting_on_another_runners_chat_is_sent_once_it_lets_go(
    waha: FakeWaha, tmp_path: Path
) -> None:
    # Several runners on one PostgreSQL: the runner holding a chat sends its rows and looks for
    # more before it lets go; a row queued just after that look must not wait for a sweep.
    target = resolve(tmp_path)
    conn = connect(target)
    mine, theirs = ChatOwnership(target), ChatOwnership(target)
    assert theirs.acquire(CHAT)
    outbox = Outbox(conn)
    async with WahaClient(waha.url) as client:
        sender = Sender(outbox, client, typing_delay_max=0, owner=mine)
        outbox.enqueue([OutMessage(CHAT, "Olá! Como posso ajudar?")])
        sender.kick(CHAT)
        await asyncio.sleep(0.5)
        if target.is_postgres:
            assert waha.sent == []  # held by the other runner: not ours to send
        theirs.release(CHAT)  # it lets go without looking again (the row came too late)
        await _until(lambda: outbox.depth() == 0)
        await sender.close()
    assert [m["text"] for m in waha.sent] == ["Olá! Como posso ajudar?"]
    mine.close()
    theirs.close()
    conn.close()
