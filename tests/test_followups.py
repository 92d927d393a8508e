from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from clinicflow.followups import (
    GIVE_UP_GRACE,
    WINDOW,
    Dropped,
    FollowUpPlan,
    plan_follow_up,
    plan_give_up,
)
from clinicflow.hours import BusinessHours
from clinicflow.loader import bundled_catalog_path, load_clinic
from clinicflow.model import FollowUp, Hours, Script, State

# The storage, runner, follow-up and crash tests run on SQLite and PostgreSQL (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")

SP = ZoneInfo("America/Sao_Paulo")
H = 3600

ASKING = State(
    name="duvidas",
    say=("Ficou alguma dúvida?",),
    follow_ups=(
        FollowUp(2 * H, "Oi, {nome|tudo bem}? Ficou alguma dúvida?"),
        FollowUp(20 * H, "Estou por aqui quando quiser agendar 💜"),
    ),
)
LATE = State(name="tarde", follow_ups=(FollowUp(25 * H, "Ainda por aí?"),))
QUIET = State(name="fim", say=("Até logo!",))
SCRIPT = Script(
    id="consulta",
    title="Consulta",
    version="1",
    start="duvidas",
    states=(ASKING, LATE, QUIET),
    max_follow_ups=2,
)


def sp(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SP)


@pytest.fixture(scope="module")
def clinic() -> BusinessHours:
    """Mon-Fri 08:00-18:00, Sat 08:00-12:00, Sunday closed, Good Friday 2026-04-03 a holiday."""
    return BusinessHours(load_clinic(bundled_catalog_path() / "clinic.yaml").hours)


def plan(
    hours: BusinessHours,
    *,
    bot: str,
    inbound: str | None = None,
    state: State = ASKING,
    index: int = 0,
    sent: int = 0,
    opted_out: bool = False,
    status: str = "bot",
) -> FollowUpPlan | Dropped:
    bot_at = sp(bot)
    return plan_follow_up(
        state=state,
        script=SCRIPT,
        sent_so_far=sent,
        last_inbound_at=sp(inbound) if inbound else bot_at - timedelta(seconds=5),
        bot_message_at=bot_at,
        hours=hours,
        opted_out=opted_out,
        status=status,
        index=index,
    )


def test_fires_two_hours_after_the_bot_message(clinic: BusinessHours) -> None:
    result = plan(clinic, bot="2026-11-24 10:00")
    assert isinstance(result, FollowUpPlan)
    assert result.fire_at == result.due_at == sp("2026-11-24 12:00")
    assert not result.shifted
    assert (result.state, result.index) == ("duvidas", 0)
    assert result.say.startswith("Oi, {nome|tudo bem}?")
    assert result.window_ends_at == sp("2026-11-24 10:00") - timedelta(seconds=5) + WINDOW


def test_the_second_counts_from_the_first(clinic: BusinessHours) -> None:
    # Patient wrote Tue 10:00; first follow-up at 12:00; the second 20 h later: Wed 08:00.
    result = plan(clinic, bot="2026-11-24 12:00", inbound="2026-11-24 10:00", index=1, sent=1)
    assert isinstance(result, FollowUpPlan)
    assert result.fire_at == sp("2026-11-25 08:00")
    assert result.say.startswith("Estou por aqui")


@pytest.mark.parametrize(
    ("bot", "inbound", "state", "index", "due"),
    [
        pytest.param("2026-11-24 10:00", None, LATE, 0, "2026-11-25 11:00", id="after-25h"),
        pytest.param(
            "2026-11-24 14:00", "2026-11-24 10:00", ASKING, 1, "2026-11-25 10:00", id="second-late"
        ),
        pytest.param(
            "2026-11-24 10:00", "2026-11-23 10:30", ASKING, 0, "2026-11-24 12:00", id="old-inbound"
        ),
    ],
)
def test_none_after_the_24_hour_window(
    clinic: BusinessHours, bot: str, inbound: str | None, state: State, index: int, due: str
) -> None:
    result = plan(clinic, bot=bot, inbound=inbound, state=state, index=index)
    assert isinstance(result, Dropped)
    assert result.reason == "window"
    assert result.due_at == sp(due)
    assert result.recordable


@pytest.mark.parametrize(
    ("bot", "fire"),
    [
        pytest.param("2026-11-24 17:00", "2026-11-25 08:00", id="closed-night"),
        pytest.param("2026-04-03 10:00", "2026-04-04 08:00", id="written-on-a-holiday"),
        pytest.param("2026-11-29 09:00", "2026-11-30 08:00", id="written-on-sunday"),
        pytest.param("2026-11-27 17:00", "2026-11-28 08:00", id="friday-to-saturday"),
    ],
)
def test_shifted_into_the_next_opening_inside_the_window(
    clinic: BusinessHours, bot: str, fire: str
) -> None:
    result = plan(clinic, bot=bot)
    assert isinstance(result, FollowUpPlan)
    assert result.shifted
    assert result.due_at == sp(bot) + timedelta(hours=2)
    assert result.fire_at == sp(fire)
    assert result.fire_at < result.window_ends_at


@pytest.mark.parametrize(
    ("bot", "fire"),
    [
        pytest.param("2026-04-02 17:00", "2026-04-04 08:00", id="eve-of-good-friday"),
        pytest.param("2026-12-24 17:00", "2026-12-26 08:00", id="christmas-eve"),
        pytest.param("2026-11-28 11:00", "2026-11-30 08:00", id="saturday-after-closing"),
    ],
)
def test_dropped_when_the_shift_leaves_the_window(
    clinic: BusinessHours, bot: str, fire: str
) -> None:
    result = plan(clinic, bot=bot)
    assert isinstance(result, Dropped)
    assert (result.reason, result.fire_at) == ("window", sp(fire))


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        pytest.param({"sent": 2}, "max", id="max-per-conversation"),
        pytest.param({"sent": 5}, "max", id="beyond-max"),
        pytest.param({"opted_out": True}, "opted_out", id="opted-out"),
        pytest.param({"opted_out": True, "status": "closed"}, "opted_out", id="opt-out-first"),
        pytest.param({"status": "waiting_human"}, "status", id="waiting-human"),
        pytest.param({"status": "human"}, "status", id="human-took-over"),
        pytest.param({"status": "closed"}, "status", id="closed"),
        pytest.param({"state": QUIET}, "none", id="state-without-follow-ups"),
        pytest.param({"index": 2}, "none", id="all-sent-in-this-state"),
        pytest.param({"state": QUIET, "sent": 2}, "none", id="none-before-max"),
    ],
)
def test_dropped_by_rule(clinic: BusinessHours, kwargs: dict[str, object], reason: str) -> None:
    result = plan(clinic, bot="2026-11-24 10:00", **kwargs)  # type: ignore[arg-type]
    assert isinstance(result, Dropped)
    assert result.reason == reason
    assert result.recordable is (reason in ("window", "max"))


def test_max_zero_disables_follow_ups(clinic: BusinessHours) -> None:
    script = replace(SCRIPT, max_follow_ups=0)
    result = plan_follow_up(
        state=ASKING,
        script=script,
        sent_so_far=0,
        last_inbound_at=sp("2026-11-24 10:00"),
        bot_message_at=sp("2026-11-24 10:00"),
        hours=clinic,
        opted_out=False,
        status="bot",
    )
    assert isinstance(result, Dropped)
    assert result.reason == "max"


def test_never_wrote_means_no_window(clinic: BusinessHours) -> None:
    result = plan_follow_up(
        state=ASKING,
        script=SCRIPT,
        sent_so_far=0,
        last_inbound_at=None,
        bot_message_at=sp("2026-11-24 10:00"),
        hours=clinic,
        opted_out=False,
        status="bot",
    )
    assert isinstance(result, Dropped)
    assert result.reason == "window"


def test_hours_not_set_never_shift() -> None:
    result = plan(BusinessHours(Hours()), bot="2026-11-29 22:00")  # Sunday night
    assert isinstance(result, FollowUpPlan)
    assert result.fire_at == sp("2026-11-30 00:00")
    assert not result.shifted


def test_times_in_any_zone(clinic: BusinessHours) -> None:
    bot_at = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 17:00 in São Paulo
    result = plan_follow_up(
        state=ASKING,
        script=SCRIPT,
        sent_so_far=0,
        last_inbound_at=bot_at,
        bot_message_at=bot_at,
        hours=clinic,
        opted_out=False,
        status="bot",
    )
    assert isinstance(result, FollowUpPlan)
    assert result.fire_at == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("inbound", "last", "expected"),
    [
        pytest.param(
            "2026-11-24 10:00", "2026-11-25 08:00", "2026-11-25 10:00", id="window-closes-later"
        ),
        pytest.param(
            "2026-11-24 10:00", "2026-11-25 09:30", "2026-11-25 11:30", id="grace-after-last"
        ),
        pytest.param(None, "2026-11-25 09:30", "2026-11-25 11:30", id="no-inbound"),
    ],
)
def test_give_up(inbound: str | None, last: str, expected: str) -> None:
    at = plan_give_up(last_inbound_at=sp(inbound) if inbound else None, last_follow_up_at=sp(last))
    assert at == sp(expected)
    assert at >= sp(last) + GIVE_UP_GRACE
