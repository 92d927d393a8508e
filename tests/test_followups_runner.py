"""Follow-ups and out-of-hours hand-offs through the runner and the fake WAHA (issue 6).

The harness engine runs on a :class:`~clinicflow.clock.ManualClock`, so the runner's follow-up
scheduler does not fire by itself: the tests move time with
``engine.follow_ups.scheduler.advance_to(...)`` (in a worker thread, like APScheduler's), and the
runner's callback hands each follow-up to the event loop, which puts it in the outbox.

Held staff notices are compared with the real time by the outbox (``next_attempt_at``), so
those tests pin the engine clock to dates after today.
"""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from runner_harness import (  # noqa: F401 - fixtures
    STAFF_PHONE,
    Live,
    MakeLive,
    data_dir,
    embedder,
    make_live,
    prebuilt,
    until,
    waha,
)

from clinicflow.clock import ManualClock
from clinicflow.engine import TurnResult

# The storage, runner, follow-up and crash tests run on SQLite and PostgreSQL (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")


SP = ZoneInfo("America/Sao_Paulo")
H = timedelta(hours=1)
PATIENT = "5511988887777@c.us"
OTHER = "5511977776666@c.us"
SECOND_STAFF = "5511990000002@c.us"
BOAS_VINDAS_FU = "Ainda está por aí? Me conta como posso te chamar"
MOTIVO_FU = "me conta com suas palavras o que te traz à consulta"


def sp(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SP)


def clock_of(live: Live) -> ManualClock:
    clock = live.engine.clock
    assert isinstance(clock, ManualClock)
    return clock


async def advance(live: Live, until_: datetime) -> None:
    """Move the engine clock, firing due follow-ups from a worker thread."""
    follow_ups = live.engine.follow_ups
    assert follow_ups is not None and not follow_ups.scheduler.autorun
    await asyncio.to_thread(follow_ups.scheduler.advance_to, until_)


def sendtext_count(live: Live, chat: str, needle: str) -> int:
    return sum(
        1
        for c in live.waha.calls
        if c.path == "/api/sendText"
        and c.json
        and c.json.get("chatId") == chat
        and needle in str(c.json.get("text"))
    )


def outbox(live: Live, chat: str) -> list[dict[str, Any]]:
    rows = live.runtime.conn.execute(
        "SELECT text, kind, status, hold_until, batch_id FROM outbox WHERE chat_id = ? ORDER BY id",
        (chat,),
    ).fetchall()
    keys = ("text", "kind", "status", "hold_until", "batch_id")
    return [dict(zip(keys, row, strict=True)) for row in rows]


async def opened(live: Live, chat: str = PATIENT) -> list[str]:
    """The patient opens consulta_ginecologica (boas_vindas, one follow-up after 2h)."""
    await live.say(chat, "quero passar com ginecologista")
    await live.settle()
    replies = live.sent_to(chat)
    assert replies and live.engine.state_of(chat)["state"] == "boas_vindas"
    return replies


# -- follow-ups ------------------------------------------------------------------------------


async def test_follow_up_reaches_waha_once_in_order(make_live: MakeLive) -> None:
    live = await make_live()
    clock = clock_of(live)
    clock.set(sp("2026-11-24T10:00"))  # Tuesday, open
    bot_at = clock.now()
    replies = await opened(live)

    seen: list[TurnResult] = []
    service = live.engine.follow_ups
    assert service is not None
    runner_send = service.on_send
    service.on_send = lambda result: (seen.append(result), runner_send(result))[-1]

    await advance(live, bot_at + 2 * H - timedelta(minutes=1))
    await asyncio.sleep(0.1)
    assert live.sent_to(PATIENT) == replies

    await advance(live, bot_at + 2 * H + timedelta(minutes=1))
    await until(lambda: len(live.sent_to(PATIENT)) > len(replies))
    await live.settle()
    sent = live.sent_to(PATIENT)
    assert sent[: len(replies)] == replies
    assert len(sent) == len(replies) + 1 and BOAS_VINDAS_FU in sent[-1]
    assert sendtext_count(live, PATIENT, BOAS_VINDAS_FU) == 1
    rows = outbox(live, PATIENT)
    assert [r["kind"] for r in rows] == ["reply"] * len(replies) + ["follow_up"]
    assert rows[-1]["status"] == "sent" and rows[-1]["batch_id"]

    # Handed over again (a retry, a second firing): the batch id keeps it to one message.
    [result] = seen
    runner_send(result)
    await asyncio.sleep(0.2)
    await live.settle()
    assert sendtext_count(live, PATIENT, BOAS_VINDAS_FU) == 1
    assert len(outbox(live, PATIENT)) == len(replies) + 1

    # Nothing more: boas_vindas has one follow-up.
    await advance(live, bot_at + 30 * H)
    await asyncio.sleep(0.1)
    await live.settle()
    assert len(live.sent_to(PATIENT)) == len(replies) + 1


async def test_patient_message_cancels_the_follow_up(make_live: MakeLive) -> None:
    live = await make_live()
    clock = clock_of(live)
    clock.set(sp("2026-11-24T10:00"))
    bot_at = clock.now()
    await opened(live)
    await advance(live, bot_at + H)
    answered_at = clock.now()
    await live.say(PATIENT, "Ana")
    await live.settle()
    assert live.engine.state_of(PATIENT)["state"] == "pergunta_motivo"
    before = len(live.sent_to(PATIENT))

    await advance(live, bot_at + 2 * H + timedelta(minutes=30))  # the old one's time
    await asyncio.sleep(0.2)
    await live.settle()
    assert len(live.sent_to(PATIENT)) == before
    assert sendtext_count(live, PATIENT, BOAS_VINDAS_FU) == 0

    await advance(live, answered_at + 2 * H + timedelta(minutes=1))  # the new state's
    await until(lambda: len(live.sent_to(PATIENT)) > before)
    await live.settle()
    assert len(live.sent_to(PATIENT)) == before + 1
    assert MOTIVO_FU in live.sent_to(PATIENT)[-1]
    assert sendtext_count(live, PATIENT, BOAS_VINDAS_FU) == 0


# -- hand-off notices and the opening hours ----------------------------------------------------


async def _patient_answered(live: Live, chat: str) -> None:
    await until(
        lambda: (
            not live.runtime.inbox.pending()
            and any(r["status"] == "sent" for r in outbox(live, chat))
            and all(r["status"] == "sent" for r in outbox(live, chat))
        )
    )


async def test_handoff_notice_held_while_closed(make_live: MakeLive) -> None:
    live = await make_live()
    clock = clock_of(live)
    saturday = sp("2026-11-28T14:00")  # a Saturday afternoon: closed until Monday 08:00
    assert live.engine.hours.next_opening(saturday) == saturday + 42 * H
    clock.set(saturday)
    await live.say(PATIENT, "quero falar com uma atendente")
    await _patient_answered(live, PATIENT)
    assert live.engine.state_of(PATIENT)["status"] == "waiting_human"
    told = "\n".join(live.sent_to(PATIENT))
    assert "fora do horário de atendimento" in told and "volta segunda-feira às 8h" in told

    opening = (saturday + 42 * H).timestamp()  # Monday 08:00
    for staff in (STAFF_PHONE, SECOND_STAFF):
        [notice] = outbox(live, staff)
        assert notice["kind"] == "handoff_notice" and notice["status"] == "pending"
        assert notice["hold_until"] == opening
    await asyncio.sleep(0.3)
    assert live.sent_to(STAFF_PHONE) == [] and live.sent_to(SECOND_STAFF) == []

    # A minute before the opening (on the clinic's clock) it still waits …
    clock.set(saturday + 42 * H - timedelta(minutes=1))
    live.runtime.sender.kick_all()
    await asyncio.sleep(0.3)
    assert live.sent_to(STAFF_PHONE) == []
    # … and at the opening the held notice goes out, once.
    clock.set(saturday + 42 * H)
    live.runtime.sender.kick_all()
    await live.settle()
    assert len(live.sent_to(STAFF_PHONE)) == 1 and len(live.sent_to(SECOND_STAFF)) == 1


async def test_urgent_handoff_at_night_reaches_staff_at_once(make_live: MakeLive) -> None:
    live = await make_live()
    clock = clock_of(live)
    night = sp("2026-11-24T22:00")  # a Tuesday night: closed until Wednesday 08:00
    assert live.engine.hours.next_opening(night) == night + 10 * H
    clock.set(night)
    # A non-urgent hand-off first: its notice is held for Wednesday 08:00 …
    await live.say(OTHER, "quero falar com uma atendente")
    await _patient_answered(live, OTHER)
    assert [r["status"] for r in outbox(live, STAFF_PHONE)] == ["pending"]
    # … and an urgent one an hour later must not queue behind it.
    clock.set(night + H)
    await live.say(PATIENT, "estou sangrando muito, já encharquei o absorvente")
    await until(
        lambda: len(live.sent_to(STAFF_PHONE)) == 1 and len(live.sent_to(SECOND_STAFF)) == 1
    )
    await _patient_answered(live, PATIENT)
    told = live.sent_to(PATIENT)
    emergency = live.engine.catalog.clinic.text("emergency")
    assert "SAMU (192)" in told[0]
    assert any("volta amanhã às 8h" in text for text in told)
    assert emergency in told
    notice = live.sent_to(STAFF_PHONE)[0]
    assert notice == live.sent_to(SECOND_STAFF)[0]
    assert PATIENT.split("@")[0][-4:] in notice  # the brief about this patient
    statuses = [r["status"] for r in outbox(live, STAFF_PHONE)]
    assert statuses == ["pending", "sent"]  # the non-urgent one still waits for the opening


async def test_handoff_notice_sent_at_once_while_open(make_live: MakeLive) -> None:
    live = await make_live()
    clock_of(live).set(sp("2026-11-24T10:00"))  # Tuesday morning
    await live.say(PATIENT, "quero falar com uma atendente")
    await until(lambda: len(live.sent_to(STAFF_PHONE)) == 1)
    await live.settle()
    assert "fora do horário" not in "\n".join(live.sent_to(PATIENT))


# -- restart ----------------------------------------------------------------------------------


async def test_restart_with_a_pending_follow_up(make_live: MakeLive) -> None:
    first = await make_live()
    clock = clock_of(first)
    clock.set(sp("2026-11-24T10:00"))
    bot_at = clock.now()
    replies = await opened(first)
    assert first.engine.follow_ups is not None
    assert first.engine.follow_ups.scheduler.pending(PATIENT) is not None
    # Stop the runner (its follow-up scheduler shuts down; the job stays stored).
    await first.http.close()
    await first.server.close()
    assert first.engine.follow_ups is None
    first.engine.close_resources()

    second = await make_live()
    assert second.waha is first.waha
    later = clock_of(second)
    later.set(clock.now())
    assert second.engine.follow_ups is not None
    job = second.engine.follow_ups.scheduler.pending(PATIENT)
    assert job is not None and job.run_at == bot_at + 2 * H
    await advance(second, bot_at + 2 * H + timedelta(minutes=1))
    await until(lambda: sendtext_count(second, PATIENT, BOAS_VINDAS_FU) == 1)
    await second.settle()
    await advance(second, bot_at + 30 * H)
    await asyncio.sleep(0.2)
    await second.settle()
    assert sendtext_count(second, PATIENT, BOAS_VINDAS_FU) == 1
    sent = second.sent_to(PATIENT)
    assert sent[: len(replies)] == replies and len(sent) == len(replies) + 1
