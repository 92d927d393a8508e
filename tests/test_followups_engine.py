"""Follow-ups, business hours and restarts through the real engine (issue 6).

Everything runs on a real :class:`~clinicflow.engine.Engine` over the bundled catalog with a
:class:`~clinicflow.clock.ManualClock`; follow-ups are enabled with ``autorun=False`` and fired
with ``engine.follow_ups.scheduler.advance_to(...)``. Each rule is checked in what the engine
hands to ``on_send`` and in what it stores (events, conversations, leads, messages).

One engine serves the rule tests (each test has its own chats and pins the clock); the restart
tests use data directories of their own, copied from a pre-built one.

Dates: November 2026 — 02/11 Monday (Finados, a holiday in clinic.yaml), 19/11 Thursday,
20/11 Friday (Consciência Negra, a holiday), 21/11 Saturday, 22/11 Sunday, 23/11 Monday.
The clinic is open Mon–Fri 08–18, Sat 08–12, closed on Sundays and holidays.
"""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from clinicflow.clock import ManualClock, iso
from clinicflow.engine import Engine, TurnResult
from clinicflow.followups import WINDOW

# The storage, runner, follow-up and crash tests run on SQLite and PostgreSQL (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")

SP = ZoneInfo("America/Sao_Paulo")
H = timedelta(hours=1)

#: Texts of the consulta_ginecologica follow-ups (scripts_catalog/consulta_ginecologica.yaml).
BOAS_VINDAS_FU = "Ainda está por aí? Me conta como posso te chamar"
MOTIVO_FU = "me conta com suas palavras o que te traz à consulta"
MENU_FU_1 = "Ficou alguma dúvida sobre a consulta? Estou por aqui"
MENU_FU_2 = "Passando para lembrar que, quando quiser, chamo a secretária"
PROXIMO_FU_1 = "Quer que eu chame a secretária para ver os horários da sua consulta?"

_chat_numbers = itertools.count(1)


def sp(text: str) -> datetime:
    """A São Paulo wall-clock time."""
    return datetime.fromisoformat(text).replace(tzinfo=SP)


def new_chat() -> str:
    return f"55119{next(_chat_numbers):08d}@c.us"


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedder() -> Any:
    from clinicflow.embeddings import USEEmbedder

    return USEEmbedder()


@pytest.fixture(scope="module")
def prebuilt(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    """A data dir with the embedding index built once for the module."""
    data = tmp_path_factory.mktemp("followups-prebuilt")
    Engine.from_catalog(None, data_dir=data, embedder=embedder).close_resources()
    return data


@dataclass
class Rig:
    """An engine with follow-ups on (fired by hand) and what it sent."""

    engine: Engine
    clock: ManualClock
    sent: list[TurnResult] = field(default_factory=list)

    def at(self, when: datetime) -> None:
        self.clock.set(when)

    def say(self, chat: str, *texts: str) -> TurnResult:
        result = None
        for text in texts:
            result = self.engine.handle(chat, text)
            self.clock.advance(30)
        assert result is not None
        return result

    def advance(self, until: datetime) -> list[TurnResult]:
        """Move the clock to ``until``, firing what comes due; what was sent meanwhile."""
        before = len(self.sent)
        assert self.engine.follow_ups is not None
        self.engine.follow_ups.scheduler.advance_to(until)
        return self.sent[before:]

    def sent_to(self, chat: str, since: int = 0) -> list[TurnResult]:
        return [r for r in self.sent[since:] if r.chat_id == chat]

    def pending(self, chat: str) -> Any:
        assert self.engine.follow_ups is not None
        return self.engine.follow_ups.scheduler.pending(chat)

    # stored data

    def events(self, chat: str, type_: str) -> list[dict[str, Any]]:
        rows = self.engine.store.query(
            "SELECT data, state, at FROM events WHERE chat_id = ? AND type = ? ORDER BY id",
            (chat, type_),
        )
        return [{**json.loads(r["data"]), "_state": r["state"], "_at": r["at"]} for r in rows]

    def conversation(self, chat: str) -> dict[str, Any]:
        rows = self.engine.store.query("SELECT * FROM conversations WHERE chat_id = ?", (chat,))
        assert len(rows) == 1
        return dict(rows[0])

    def lead(self, chat: str) -> dict[str, Any]:
        rows = self.engine.store.query("SELECT * FROM leads WHERE chat_id = ?", (chat,))
        assert len(rows) == 1
        return dict(rows[0])

    def follow_up_messages(self, chat: str) -> list[dict[str, Any]]:
        rows = self.engine.store.query(
            "SELECT text, kind, direction, state, at FROM messages "
            "WHERE chat_id = ? AND kind = 'follow_up' ORDER BY id",
            (chat,),
        )
        return [dict(r) for r in rows]


def make_rig(data_dir: Path, embedder: Any, clock: ManualClock) -> Rig:
    engine = Engine.from_catalog(None, data_dir=data_dir, embedder=embedder, clock=clock)
    rig = Rig(engine, clock)
    engine.enable_follow_ups(rig.sent.append, autorun=False)
    return rig


@pytest.fixture(scope="module")
def rig(
    prebuilt: Path, tmp_path_factory: pytest.TempPathFactory, embedder: Any, module_backend: str
) -> Iterator[Rig]:
    data = tmp_path_factory.mktemp("followups-shared") / "data"
    shutil.copytree(prebuilt, data)
    shared = make_rig(data, embedder, ManualClock(sp("2026-11-23T09:00")))
    yield shared
    shared.engine.close_resources()


@pytest.fixture
def fresh_dir(prebuilt: Path, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(prebuilt, data)
    return data


def to_menu(rig: Rig, chat: str, name: str = "Ana") -> datetime:
    """Walk consulta_ginecologica to menu_principal (2 follow-ups); the bot message's time."""
    rig.say(chat, "quero passar com ginecologista", name, "1")
    bot_at = rig.clock.now()
    result = rig.say(chat, "1")
    assert result.state == "menu_principal", result
    return bot_at


def start(rig: Rig, chat: str) -> datetime:
    """Open consulta_ginecologica (boas_vindas: one follow-up); the bot message's time."""
    bot_at = rig.clock.now()
    result = rig.say(chat, "quero passar com ginecologista")
    assert result.state == "boas_vindas", result
    return bot_at


# -- follow-ups at 2h and 20h, the lead lost after the last one -----------------------------------


def test_first_follow_up_two_hours_after_the_bot_message(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-23T10:00"))
    bot_at = to_menu(rig, chat)
    job = rig.pending(chat)
    assert job is not None and job.kind == "follow_up"
    assert (job.state, job.index) == ("menu_principal", 0)
    assert job.run_at == bot_at + 2 * H

    mark = len(rig.sent)
    rig.advance(bot_at + 2 * H - timedelta(minutes=1))
    assert rig.sent_to(chat, mark) == []

    rig.advance(bot_at + 2 * H + timedelta(minutes=1))
    [fu] = rig.sent_to(chat, mark)
    assert len(fu.replies) == 1 and MENU_FU_1 in fu.replies[0]
    assert fu.replies[0].startswith("Oi, Ana")  # filled like any other text
    assert "{" not in fu.replies[0]
    assert fu.extra["kind"] == "follow_up" and fu.extra["batch_id"]
    assert fu.state == "menu_principal" and fu.status == "bot"

    # stored: the message (kind follow_up, at the due time), the event, the counter
    [row] = rig.follow_up_messages(chat)
    assert row["direction"] == "out" and row["text"] == fu.replies[0]
    assert row["state"] == "menu_principal"
    assert row["at"] == iso(bot_at + 2 * H)
    [event] = rig.events(chat, "follow_up_sent")
    assert event["state"] == "menu_principal" and event["index"] == 0
    conv = rig.conversation(chat)
    assert conv["follow_ups_sent"] == 1
    assert conv["last_outbound_at"] == iso(bot_at + 2 * H)


def test_second_follow_up_twenty_hours_after_the_first_then_lead_lost(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-23T10:00"))
    bot_at = to_menu(rig, chat)
    last_inbound = bot_at  # her "1" was answered at once
    first_at = bot_at + 2 * H
    second_at = first_at + 20 * H  # Tuesday 08:01:30: open, inside the window (10:01:30)
    mark = len(rig.sent)
    rig.advance(first_at + timedelta(minutes=1))
    assert [r.replies for r in rig.sent_to(chat, mark)] and rig.pending(chat).index == 1
    assert rig.pending(chat).run_at == second_at

    mark = len(rig.sent)
    rig.advance(second_at - timedelta(minutes=1))
    assert rig.sent_to(chat, mark) == []
    rig.advance(second_at + timedelta(minutes=1))
    [fu] = rig.sent_to(chat, mark)
    assert MENU_FU_2 in fu.replies[0]
    assert rig.conversation(chat)["follow_ups_sent"] == 2
    assert [e["index"] for e in rig.events(chat, "follow_up_sent")] == [0, 1]
    assert len(rig.follow_up_messages(chat)) == 2
    assert rig.lead(chat)["status"] != "lost"

    # no third one: the give-up job waits for the end of WhatsApp's window
    job = rig.pending(chat)
    assert job is not None and job.kind == "give_up"
    assert job.run_at == last_inbound + WINDOW

    mark = len(rig.sent)
    rig.advance(second_at + 3 * 24 * H)
    assert rig.sent_to(chat, mark) == []
    assert rig.pending(chat) is None
    lead = rig.lead(chat)
    assert lead["status"] == "lost" and lead["lost_reason"] == "no_answer"
    assert lead["lost_at"] == iso(last_inbound + WINDOW)
    conv = rig.conversation(chat)
    assert conv["lead_status"] == "lost" and conv["lost_reason"] == "no_answer"
    assert conv["status"] == "bot" and conv["follow_ups_sent"] == 2
    assert [e["reason"] for e in rig.events(chat, "lead_lost")] == ["no_answer"]


def test_answering_the_last_follow_up_keeps_the_lead(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-23T10:00"))
    bot_at = to_menu(rig, chat)
    rig.advance(bot_at + 22 * H + timedelta(minutes=1))
    assert len(rig.sent_to(chat)) == 2
    rig.say(chat, "4")  # she answers the second follow-up (Endereço e horários)
    rig.advance(rig.clock.now() + 3 * 24 * H)
    assert rig.lead(chat)["status"] != "lost"
    assert rig.events(chat, "lead_lost") == []


# -- the 24-hour window and max_follow_ups ---------------------------------------------------------


def test_none_after_the_24_hour_window(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-23T10:00"))
    rig.say(chat, "quero passar com ginecologista", "Dani")
    last_inbound = rig.clock.now()
    result = rig.say(chat, "quero falar com a secretária")
    assert result.status == "waiting_human"
    # The secretary hands back 23h later: the follow-up would fire 2h after her message,
    # an hour after WhatsApp's window closed.
    rig.advance(last_inbound + 23 * H)
    back = rig.engine.hand_back(chat)
    assert back.state == "pergunta_motivo" and back.replies
    assert rig.pending(chat) is None
    [dropped] = rig.events(chat, "follow_up_dropped")
    assert dropped["reason"] == "window" and dropped["state"] == "pergunta_motivo"
    mark = len(rig.sent)
    rig.advance(rig.clock.now() + 2 * 24 * H)
    assert rig.sent_to(chat, mark) == []
    assert rig.conversation(chat)["follow_ups_sent"] == 0
    assert rig.follow_up_messages(chat) == []


def test_never_more_than_max_follow_ups_per_conversation(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-25T09:00"))
    bot_at = start(rig, chat)
    rig.advance(bot_at + 2 * H + timedelta(minutes=5))
    rig.say(chat, "Carla")
    rig.advance(rig.clock.now() + 2 * H + timedelta(minutes=5))
    sent = [r.replies[0] for r in rig.sent_to(chat)]
    assert len(sent) == 2 and BOAS_VINDAS_FU in sent[0] and MOTIVO_FU in sent[1]
    rig.say(chat, "1")
    result = rig.say(chat, "1")
    assert result.state == "menu_principal"
    # menu_principal has follow-ups, but the script's maximum (2) is reached
    assert rig.pending(chat) is None
    [dropped] = rig.events(chat, "follow_up_dropped")
    assert dropped["reason"] == "max" and dropped["state"] == "menu_principal"
    mark = len(rig.sent)
    rig.advance(rig.clock.now() + 2 * 24 * H)
    assert rig.sent_to(chat, mark) == []
    assert rig.conversation(chat)["follow_ups_sent"] == 2
    assert len(rig.events(chat, "follow_up_sent")) == 2
    assert len(rig.follow_up_messages(chat)) == 2


# -- closed hours: shifted into the next opening, dropped when that leaves the window -------------


@pytest.mark.parametrize(
    ("written", "fires"),
    [
        pytest.param("2026-11-23T10:00", "2026-11-23T12:00", id="open-no-shift"),
        pytest.param("2026-11-28T09:00", "2026-11-28T11:00", id="saturday-morning-no-shift"),
        pytest.param("2026-11-23T17:00", "2026-11-24T08:00", id="night-to-8h"),
        pytest.param("2026-11-22T10:00", "2026-11-23T08:00", id="sunday-to-monday"),
        pytest.param("2026-11-02T09:00", "2026-11-03T08:00", id="holiday-to-next-day"),
        pytest.param("2026-11-21T11:00", None, id="saturday-afternoon-past-window"),
        pytest.param("2026-11-19T17:00", None, id="holiday-eve-past-window"),
        pytest.param("2026-12-24T17:30", None, id="christmas-eve-past-window"),
    ],
)
def test_closed_hours_shift_or_drop(rig: Rig, written: str, fires: str | None) -> None:
    chat = new_chat()
    rig.at(sp(written))
    bot_at = start(rig, chat)
    job = rig.pending(chat)
    mark = len(rig.sent)
    if fires is None:
        assert job is None
        [dropped] = rig.events(chat, "follow_up_dropped")
        assert dropped["reason"] == "window" and dropped["state"] == "boas_vindas"
        rig.advance(bot_at + 3 * 24 * H)
        assert rig.sent_to(chat, mark) == []
        assert rig.follow_up_messages(chat) == []
        return
    assert job is not None and job.run_at == sp(fires)
    rig.advance(sp(fires) - timedelta(minutes=1))
    assert rig.sent_to(chat, mark) == []
    rig.advance(sp(fires) + timedelta(minutes=1))
    [fu] = rig.sent_to(chat, mark)
    assert BOAS_VINDAS_FU in fu.replies[0]
    [row] = rig.follow_up_messages(chat)
    assert row["at"] == iso(sp(fires))
    assert rig.events(chat, "follow_up_dropped") == []


def test_second_follow_up_shifted_out_of_the_window_is_dropped_and_lead_lost(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-23T16:58"))
    to_menu(rig, chat)
    last_inbound = rig.clock.now() - timedelta(seconds=30)
    # first: due 19:00 Monday (closed) → Tuesday 08:00
    assert rig.pending(chat).run_at == sp("2026-11-24T08:00")
    rig.advance(sp("2026-11-24T08:05"))
    assert len(rig.sent_to(chat)) == 1
    # second: due Wednesday 04:00 → 08:00, after the window (Monday 16:59:30 + 24h)
    job = rig.pending(chat)
    assert job is not None and job.kind == "give_up"
    [dropped] = rig.events(chat, "follow_up_dropped")
    assert dropped["reason"] == "window" and dropped["index"] == 1
    rig.advance(sp("2026-11-27T12:00"))
    assert len(rig.sent_to(chat)) == 1
    lead = rig.lead(chat)
    assert lead["status"] == "lost" and lead["lost_reason"] == "no_answer"
    assert lead["lost_at"] == iso(last_inbound + WINDOW)


# -- cancelled by anything that happens ----------------------------------------------------------


def test_patient_writing_cancels_and_the_new_state_plans_its_own(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-24T09:00"))
    bot_at = to_menu(rig, chat, "Bia")
    rig.advance(bot_at + H)
    answered_at = rig.clock.now()
    result = rig.say(chat, "1")
    assert result.state == "proximo_passo"
    job = rig.pending(chat)
    assert (job.state, job.index, job.run_at) == ("proximo_passo", 0, answered_at + 2 * H)
    mark = len(rig.sent)
    rig.advance(bot_at + 2 * H + timedelta(minutes=30))  # when the old one was due
    assert rig.sent_to(chat, mark) == []
    rig.advance(answered_at + 2 * H + timedelta(minutes=1))
    [fu] = rig.sent_to(chat, mark)
    assert PROXIMO_FU_1 in fu.replies[0] and MENU_FU_1 not in fu.replies[0]
    assert [(e["state"], e["index"]) for e in rig.events(chat, "follow_up_sent")] == [
        ("proximo_passo", 0)
    ]


def _handoff(rig: Rig, chat: str) -> None:
    assert rig.say(chat, "quero falar com a secretária").status == "waiting_human"


def _opt_out(rig: Rig, chat: str) -> None:
    assert rig.say(chat, "pare de me mandar mensagem").status == "closed"


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(_handoff, id="hand-off"),
        pytest.param(_opt_out, id="opt-out"),
        pytest.param(lambda rig, chat: rig.engine.take_over(chat), id="take-over"),
        pytest.param(lambda rig, chat: rig.engine.close(chat), id="close"),
        pytest.param(lambda rig, chat: rig.engine.mark_scheduled(chat), id="booked"),
    ],
)
def test_cancelled_by(rig: Rig, action: Any) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-24T10:00"))
    rig.say(chat, "quero passar com ginecologista")
    assert rig.pending(chat) is not None
    action(rig, chat)
    assert rig.pending(chat) is None
    mark = len(rig.sent)
    rig.advance(rig.clock.now() + 3 * 24 * H)
    assert rig.sent_to(chat, mark) == []
    assert rig.events(chat, "follow_up_sent") == []
    assert rig.follow_up_messages(chat) == []
    assert rig.conversation(chat)["follow_ups_sent"] == 0
    rig.advance(rig.clock.now() + 3 * 24 * H)
    assert all(e["reason"] != "no_answer" for e in rig.events(chat, "lead_lost"))
    assert rig.lead(chat)["lost_reason"] != "no_answer"


def test_no_follow_up_for_an_opted_out_patient_even_if_a_job_slips_through(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-24T10:00"))
    rig.say(chat, "quero passar com ginecologista")
    job = rig.pending(chat)
    conv = rig.engine.state_of(chat)
    assert conv is not None
    rig.say(chat, "pare de me mandar mensagem")
    # The job comes back (say, a cancel lost in a crash): still nothing reaches her.
    rig.engine.follow_ups.scheduler.schedule(  # type: ignore[union-attr]
        chat, job.run_at, job.state, job.index, job.digest, since=job.since,
        deadline=job.run_at + H,
    )  # fmt: skip
    mark = len(rig.sent)
    rig.advance(job.run_at + timedelta(minutes=1))
    assert rig.sent_to(chat, mark) == []
    assert rig.events(chat, "follow_up_sent") == []


def test_stale_job_does_nothing(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-24T10:00"))
    start(rig, chat)
    old = rig.pending(chat)
    assert old is not None and old.state == "boas_vindas"
    rig.say(chat, "Ana")  # the conversation moved on (pergunta_motivo, new bot message)
    before = rig.engine.state_of(chat)
    # An old job for the old bot message fires anyway: it is recognised and ignored.
    rig.engine.follow_ups.scheduler.schedule(  # type: ignore[union-attr]
        chat, rig.clock.now() + timedelta(minutes=5), old.state, old.index, old.digest,
        since=old.since, deadline=rig.clock.now() + 20 * H,
    )  # fmt: skip
    mark = len(rig.sent)
    rig.advance(rig.clock.now() + timedelta(minutes=10))
    assert rig.sent_to(chat, mark) == []
    assert rig.events(chat, "follow_up_sent") == []
    assert rig.follow_up_messages(chat) == []
    after = rig.engine.state_of(chat)
    assert after is not None and before is not None
    assert after["follow_ups_sent"] == before["follow_ups_sent"] == 0
    assert after["last_outbound_at"] == before["last_outbound_at"]


# -- out-of-hours hand-offs -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "words", "opening"),
    [
        pytest.param("2026-11-28T14:00", "segunda-feira às 8h", "2026-11-30T08:00", id="sat"),
        pytest.param("2026-11-29T23:00", "amanhã às 8h", "2026-11-30T08:00", id="sun-night"),
        pytest.param("2026-11-24T20:00", "amanhã às 8h", "2026-11-25T08:00", id="weeknight"),
        pytest.param("2026-11-19T19:00", "sábado às 8h", "2026-11-21T08:00", id="holiday-eve"),
        pytest.param("2026-11-25T06:30", "hoje às 8h", "2026-11-25T08:00", id="early"),
        pytest.param("2026-11-20T10:00", "amanhã às 8h", "2026-11-21T08:00", id="holiday"),
        pytest.param("2026-11-21T12:00", "segunda-feira às 8h", "2026-11-23T08:00", id="sat-noon"),
    ],
)
def test_out_of_hours_handoff_tells_when_and_is_queued(
    rig: Rig, written: str, words: str, opening: str
) -> None:
    chat = new_chat()
    rig.at(sp(written))
    result = rig.say(chat, "quero falar com uma atendente")
    assert result.status == "waiting_human"
    assert result.handoff is not None and result.handoff["urgent"] is False
    text = "\n".join(result.replies)
    assert "fora do horário de atendimento" in text
    assert f"volta {words}" in text
    assert "{proxima_abertura}" not in text
    assert result.handoff["notify_at"] == iso(sp(opening))
    [event] = rig.events(chat, "handoff_requested")
    assert event["queued"] == iso(sp(opening))
    assert rig.engine.store.query("SELECT status FROM handoffs WHERE chat_id = ?", (chat,))


def test_handoff_while_open_notifies_now(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-24T10:00"))
    result = rig.say(chat, "quero falar com uma atendente")
    assert result.handoff is not None and result.handoff["notify_at"] is None
    assert "fora do horário" not in "\n".join(result.replies)


def test_urgent_at_night_notifies_now_with_emergency_text(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-24T23:00"))
    result = rig.say(chat, "estou sangrando muito, já encharquei o absorvente")
    assert result.status == "waiting_human"
    assert result.handoff is not None
    assert result.handoff["urgent"] is True and result.handoff["reason"] == "urgent"
    assert result.handoff["notify_at"] is None  # the staff hear of it at once
    text = "\n".join(result.replies)
    clinic = rig.engine.catalog.clinic
    assert clinic.text("emergency") in result.replies
    assert "SAMU (192)" in text and "volta amanhã às 8h" in text
    [row] = rig.engine.store.query("SELECT urgent FROM handoffs WHERE chat_id = ?", (chat,))
    assert row["urgent"] == 1
    # no follow-up for a chat waiting for a person
    assert rig.pending(chat) is None


def test_urgent_while_waiting_at_night_gets_the_emergency_text(rig: Rig) -> None:
    """Already waiting for the secretary (queued for the morning), she writes a red flag."""
    chat = new_chat()
    rig.at(sp("2026-11-24T22:00"))
    first = rig.say(chat, "quero falar com uma atendente")
    assert first.handoff is not None and first.handoff["notify_at"] is not None
    result = rig.say(chat, "estou sangrando muito, já encharquei o absorvente")
    assert result.handoff is not None and result.handoff["urgent"] is True
    assert not result.handoff.get("notify_at")  # the staff hear of it at once
    assert "SAMU (192)" in "\n".join(result.replies)
    # Spec: urgent hand-offs while closed come with the clinic's emergency guidance text.
    assert rig.engine.catalog.clinic.text("emergency") in result.replies, result.replies


def test_patient_message_while_a_follow_up_is_being_sent_keeps_her_new_plan(rig: Rig) -> None:
    """She answers in the instant the follow-up leaves (between the send and the next plan)."""
    chat = new_chat()
    rig.at(sp("2026-11-24T10:00"))
    bot_at = start(rig, chat)
    service = rig.engine.follow_ups
    assert service is not None
    original = service.on_send
    answered: list[TurnResult] = []

    def on_send(result: TurnResult) -> None:
        original(result)
        if result.chat_id == chat and not answered:
            rig.clock.advance(60)
            answered.append(rig.engine.handle(chat, "Ana"))

    service.on_send = on_send
    try:
        rig.advance(bot_at + 2 * H + timedelta(minutes=1))
    finally:
        service.on_send = original
    [turn] = answered
    assert turn.state == "pergunta_motivo"
    job = rig.pending(chat)
    assert job is not None
    assert (job.kind, job.state, job.index) == ("follow_up", "pergunta_motivo", 0), job


# -- restarts -------------------------------------------------------------------------------------


def test_pending_follow_up_survives_a_restart_and_fires_once(
    fresh_dir: Path, embedder: Any
) -> None:
    clock = ManualClock(sp("2026-11-24T10:00"))
    chat = new_chat()
    first = make_rig(fresh_dir, embedder, clock)
    bot_at = start(first, chat)
    assert first.pending(chat) is not None
    first.engine.close_resources()

    second = make_rig(fresh_dir, embedder, clock)
    try:
        job = second.pending(chat)
        assert job is not None and job.run_at == bot_at + 2 * H
        second.advance(bot_at + 2 * H + timedelta(minutes=1))
        assert [BOAS_VINDAS_FU in r.replies[0] for r in second.sent_to(chat)] == [True]
        second.advance(bot_at + 3 * 24 * H)
        assert len(second.sent_to(chat)) == 1
        assert len(second.events(chat, "follow_up_sent")) == 1
        assert len(second.follow_up_messages(chat)) == 1
        assert second.conversation(chat)["follow_ups_sent"] == 1
    finally:
        second.engine.close_resources()


def test_missed_while_down_fires_once_on_start_never_twice(fresh_dir: Path, embedder: Any) -> None:
    clock = ManualClock(sp("2026-11-24T10:00"))
    chat = new_chat()
    first = make_rig(fresh_dir, embedder, clock)
    bot_at = start(first, chat)
    first.engine.close_resources()

    clock.set(bot_at + 3 * H)  # down over the due time; still open and inside the window
    second = make_rig(fresh_dir, embedder, clock)
    try:
        second.advance(clock.now())  # the first pass after the start
        [fu] = second.sent_to(chat)
        assert BOAS_VINDAS_FU in fu.replies[0]
        [row] = second.follow_up_messages(chat)
        assert row["at"] == iso(bot_at + 3 * H)  # sent when the engine came back
        second.advance(clock.now() + timedelta(minutes=1))
        assert len(second.sent_to(chat)) == 1
    finally:
        second.engine.close_resources()

    third = make_rig(fresh_dir, embedder, clock)
    try:
        third.advance(clock.now() + timedelta(minutes=1))
        assert third.sent_to(chat) == []
        assert len(third.events(chat, "follow_up_sent")) == 1
        assert third.conversation(chat)["follow_ups_sent"] == 1
    finally:
        third.engine.close_resources()


def test_missed_while_down_fires_once_when_apscheduler_starts(
    fresh_dir: Path, embedder: Any
) -> None:
    """autorun: APScheduler's own start-up pass fires the overdue job (no advance_to)."""
    # Dates in the past of the real clock, so APScheduler sees the job as overdue.
    clock = ManualClock(sp("2026-03-03T10:00"))  # a Tuesday
    chat = new_chat()
    first = make_rig(fresh_dir, embedder, clock)
    bot_at = start(first, chat)
    first.engine.close_resources()

    clock.set(bot_at + 3 * H)  # open, inside the window
    for attempt in range(2):
        engine = Engine.from_catalog(None, data_dir=fresh_dir, embedder=embedder, clock=clock)
        sent: list[TurnResult] = []
        got = threading.Event()

        def on_send(
            result: TurnResult, sent: list[TurnResult] = sent, got: threading.Event = got
        ) -> None:
            sent.append(result)
            got.set()

        engine.enable_follow_ups(on_send, autorun=True)
        try:
            if attempt == 0:
                assert got.wait(5.0), "the overdue follow-up did not fire on start"
                time.sleep(0.2)
                assert [r.chat_id for r in sent] == [chat]
            else:
                time.sleep(0.5)
                assert sent == []  # never twice
        finally:
            engine.close_resources()
    rig = make_rig(fresh_dir, embedder, clock)
    try:
        assert len(rig.events(chat, "follow_up_sent")) == 1
        assert len(rig.follow_up_messages(chat)) == 1
    finally:
        rig.engine.close_resources()


def test_missed_while_down_past_the_window_is_dropped_and_recorded(
    fresh_dir: Path, embedder: Any
) -> None:
    clock = ManualClock(sp("2026-11-24T10:00"))
    chat = new_chat()
    first = make_rig(fresh_dir, embedder, clock)
    bot_at = start(first, chat)
    first.engine.close_resources()

    clock.set(bot_at + 25 * H)  # Wednesday 11:00: open, but the window closed at 10:00
    second = make_rig(fresh_dir, embedder, clock)
    try:
        second.advance(clock.now() + timedelta(minutes=1))
        assert second.sent_to(chat) == []
        assert second.follow_up_messages(chat) == []
        assert [e["reason"] for e in second.events(chat, "follow_up_dropped")] == ["window"]
        assert second.conversation(chat)["follow_ups_sent"] == 0
    finally:
        second.engine.close_resources()


def test_missed_while_down_into_closed_hours_waits_for_the_opening(
    fresh_dir: Path, embedder: Any
) -> None:
    clock = ManualClock(sp("2026-11-24T10:00"))
    chat = new_chat()
    first = make_rig(fresh_dir, embedder, clock)
    bot_at = start(first, chat)  # due 12:00 Tuesday
    first.engine.close_resources()

    clock.set(sp("2026-11-24T20:00"))  # back at night: moved to Wednesday 08:00 (window 10:00)
    second = make_rig(fresh_dir, embedder, clock)
    try:
        second.advance(clock.now())
        assert second.sent_to(chat) == []
        job = second.pending(chat)
        assert job is not None and job.run_at == sp("2026-11-25T08:00")
        second.advance(sp("2026-11-25T08:01"))
        [fu] = second.sent_to(chat)
        assert BOAS_VINDAS_FU in fu.replies[0]
        [row] = second.follow_up_messages(chat)
        assert row["at"] == iso(sp("2026-11-25T08:00"))
        assert bot_at < sp("2026-11-25T08:00")
    finally:
        second.engine.close_resources()


def test_last_follow_up_dropped_after_a_restart_still_marks_the_lead_lost(
    fresh_dir: Path, embedder: Any
) -> None:
    """The first follow-up went unanswered and the second was missed while down."""
    clock = ManualClock(sp("2026-11-23T10:00"))
    chat = new_chat()
    first = make_rig(fresh_dir, embedder, clock)
    to_menu(first, chat)
    last_inbound = clock.now() - timedelta(seconds=30)
    first.advance(last_inbound + 2 * H + timedelta(minutes=1))
    assert len(first.sent_to(chat)) == 1
    first.engine.close_resources()

    clock.set(last_inbound + 25 * H)  # the second (due Tuesday 08:01) is past the window
    second = make_rig(fresh_dir, embedder, clock)
    try:
        second.advance(clock.now() + 3 * 24 * H)
        assert second.sent_to(chat) == []
        assert [e["reason"] for e in second.events(chat, "follow_up_dropped")] == ["window"]
        lead = second.lead(chat)
        assert lead["status"] == "lost" and lead["lost_reason"] == "no_answer"
    finally:
        second.engine.close_resources()


def test_jobs_are_plain_and_importable(rig: Rig) -> None:
    chat = new_chat()
    rig.at(sp("2026-11-24T10:00"))
    start(rig, chat)
    rows = rig.engine.store.query(
        "SELECT id FROM apscheduler_jobs WHERE id = ?", (f"followup:{chat}",)
    )
    assert len(rows) == 1
    scheduler = rig.engine.follow_ups.scheduler  # type: ignore[union-attr]
    job = scheduler._running().get_job(f"followup:{chat}")
    assert job.func_ref == "clinicflow.scheduler:fire_follow_up"
    assert json.loads(json.dumps(job.kwargs)) == job.kwargs  # plain values only
    assert job.next_run_time.astimezone(UTC) == rig.pending(chat).run_at
