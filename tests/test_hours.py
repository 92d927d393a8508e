from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from clinicflow.clock import ManualClock
from clinicflow.durations import parse_day_hours
from clinicflow.hours import BusinessHours, HoursError, at_phrase, status_line
from clinicflow.loader import bundled_catalog_path, load_clinic
from clinicflow.model import Hours

SP = ZoneInfo("America/Sao_Paulo")


def sp(text: str) -> datetime:
    """A São Paulo wall time, e.g. ``sp("2026-11-24 19:00")``."""
    return datetime.fromisoformat(text).replace(tzinfo=SP)


def week(**days: str) -> tuple[tuple[tuple[int, int], ...], ...]:
    keys = ("seg", "ter", "qua", "qui", "sex", "sab", "dom")
    return tuple(parse_day_hours(days.get(key, "fechado")) for key in keys)


@pytest.fixture(scope="module")
def clinic() -> BusinessHours:
    """The bundled clinic: Mon-Fri 08:00-18:00, Sat 08:00-12:00, national holidays."""
    return BusinessHours(load_clinic(bundled_catalog_path() / "clinic.yaml").hours)


LUNCH = BusinessHours(
    Hours(
        weekly=week(
            **dict.fromkeys(("seg", "ter", "qua", "qui", "sex"), "08:00-12:00, 13:00-18:00")
        )
    )
)

# Closed for a week before reopening at 08:30 on Wednesday, 2 December 2026.
RECESS = BusinessHours(
    Hours(
        weekly=week(**dict.fromkeys(("seg", "ter", "qua", "qui", "sex"), "08:30-17:00")),
        holidays=tuple(str(date(2026, 11, 25) + timedelta(days=n)) for n in range(7)),
    )
)


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param("2026-11-24 10:00", True, id="tuesday-morning"),
        pytest.param("2026-11-24 08:00", True, id="opening-minute"),
        pytest.param("2026-11-24 07:59", False, id="minute-before-opening"),
        pytest.param("2026-11-24 17:59", True, id="last-minute"),
        pytest.param("2026-11-24 18:00", False, id="closing-minute"),
        pytest.param("2026-11-24 19:00", False, id="weekday-evening"),
        pytest.param("2026-11-28 11:30", True, id="saturday-morning"),
        pytest.param("2026-11-28 14:00", False, id="saturday-afternoon"),
        pytest.param("2026-11-29 10:00", False, id="sunday"),
        pytest.param("2026-04-03 10:00", False, id="good-friday-holiday"),
        pytest.param("2026-12-25 10:00", False, id="christmas"),
        pytest.param("2026-12-24 10:00", True, id="christmas-eve-is-a-working-day"),
    ],
)
def test_is_open(clinic: BusinessHours, when: str, expected: bool) -> None:
    assert clinic.is_open(sp(when)) is expected


@pytest.mark.parametrize(
    ("when", "opening", "words"),
    [
        pytest.param("2026-11-24 19:00", "2026-11-25 08:00", "amanhã às 8h", id="weekday-evening"),
        pytest.param("2026-11-24 06:30", "2026-11-24 08:00", "hoje às 8h", id="before-opening"),
        pytest.param("2026-11-24 00:00", "2026-11-24 08:00", "hoje às 8h", id="midnight"),
        pytest.param(
            "2026-11-28 14:00", "2026-11-30 08:00", "segunda-feira às 8h", id="saturday-afternoon"
        ),
        pytest.param(
            "2026-11-28 12:00", "2026-11-30 08:00", "segunda-feira às 8h", id="saturday-at-closing"
        ),
        pytest.param("2026-11-29 23:00", "2026-11-30 08:00", "amanhã às 8h", id="sunday-23h"),
        pytest.param("2026-11-27 18:30", "2026-11-28 08:00", "amanhã às 8h", id="friday-evening"),
        pytest.param(
            "2026-04-02 19:00", "2026-04-04 08:00", "sábado às 8h", id="eve-of-holiday-friday"
        ),
        pytest.param("2026-04-03 10:00", "2026-04-04 08:00", "amanhã às 8h", id="on-holiday"),
        pytest.param(
            "2026-12-24 19:00", "2026-12-26 08:00", "sábado às 8h", id="day-before-christmas"
        ),
        pytest.param("2026-12-31 20:00", "2027-01-02 08:00", "sábado às 8h", id="new-year-eve"),
        pytest.param(
            "2026-11-24 10:00", "2026-11-25 08:00", "amanhã às 8h", id="open-now-next-day"
        ),
    ],
)
def test_next_opening_in_words(clinic: BusinessHours, when: str, opening: str, words: str) -> None:
    now = sp(when)
    found = clinic.next_opening(now)
    assert found == sp(opening)
    assert clinic.describe_opening(found, now) == words


@pytest.mark.parametrize(
    ("when", "opening", "words"),
    [
        pytest.param("2026-11-24 12:30", "2026-11-24 13:00", "hoje às 13h", id="lunch-break"),
        pytest.param("2026-11-24 12:00", "2026-11-24 13:00", "hoje às 13h", id="noon-closes"),
        pytest.param("2026-11-24 09:00", "2026-11-24 13:00", "hoje às 13h", id="morning"),
        pytest.param("2026-11-24 15:00", "2026-11-25 08:00", "amanhã às 8h", id="afternoon"),
        pytest.param("2026-11-27 18:00", "2026-11-30 08:00", "segunda-feira às 8h", id="friday"),
    ],
)
def test_lunch_break_ranges(when: str, opening: str, words: str) -> None:
    now = sp(when)
    assert LUNCH.next_opening(now) == sp(opening)
    assert LUNCH.describe_opening(LUNCH.next_opening(now), now) == words


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        pytest.param("2026-11-24 11:59", True, id="11h59"),
        pytest.param("2026-11-24 12:00", False, id="12h"),
        pytest.param("2026-11-24 12:59", False, id="12h59"),
        pytest.param("2026-11-24 13:00", True, id="13h"),
    ],
)
def test_lunch_break_is_closed(when: str, expected: bool) -> None:
    assert LUNCH.is_open(sp(when)) is expected


@pytest.mark.parametrize(
    ("now", "opening", "words"),
    [
        pytest.param(
            "2026-11-24 19:00",
            "2026-12-02 08:30",
            "na quarta-feira, 2 de dezembro, às 8h30",
            id="recess-more-than-6-days",
        ),
        pytest.param("2026-11-24 19:00", "2026-11-30 14:00", "segunda-feira às 14h", id="6-days"),
        pytest.param(
            "2026-11-24 19:00",
            "2026-12-05 09:00",
            "no sábado, 5 de dezembro, às 9h",
            id="saturday-article",
        ),
        pytest.param(
            "2026-12-23 19:00",
            "2027-01-04 08:00",
            "na segunda-feira, 4 de janeiro de 2027, às 8h",
            id="next-year",
        ),
        pytest.param("2026-11-24 19:00", "2026-11-25 01:15", "amanhã à 1h15", id="one-oclock"),
        pytest.param("2026-11-24 19:00", "2026-11-25 00:00", "amanhã à meia-noite", id="midnight"),
        pytest.param("2026-11-24 07:00", "2026-11-24 12:00", "hoje às 12h", id="noon"),
    ],
)
def test_describe_opening(now: str, opening: str, words: str) -> None:
    assert RECESS.describe_opening(sp(opening), sp(now)) == words


def test_a_closed_week_searches_past_the_holidays() -> None:
    now = sp("2026-11-24 19:00")
    opening = RECESS.next_opening(now)
    assert opening == sp("2026-12-02 08:30")
    assert RECESS.describe_opening(opening, now) == "na quarta-feira, 2 de dezembro, às 8h30"


@pytest.mark.parametrize(
    "now",
    [
        pytest.param(datetime(2026, 11, 24, 22, 0, tzinfo=UTC), id="utc"),
        pytest.param(
            datetime(2026, 11, 25, 7, 0, tzinfo=timezone(timedelta(hours=9))), id="tokyo-offset"
        ),
        pytest.param(datetime(2026, 11, 24, 17, 0, tzinfo=ZoneInfo("America/New_York")), id="ny"),
    ],
)
def test_any_time_zone_in_clinic_time(clinic: BusinessHours, now: datetime) -> None:
    # All three are Tuesday 24 Nov 2026, 19:00 in São Paulo.
    assert not clinic.is_open(now)
    opening = clinic.next_opening(now)
    assert opening == sp("2026-11-25 08:00")
    assert opening.tzinfo == SP
    assert clinic.describe_opening(opening, now) == "amanhã às 8h"


@pytest.mark.parametrize(
    "day",
    [
        pytest.param("2026-01-15", id="january-summer"),
        pytest.param("2026-07-15", id="july-winter"),
        pytest.param("2026-11-04", id="november-former-dst"),
    ],
)
def test_sao_paulo_has_no_daylight_saving(clinic: BusinessHours, day: str) -> None:
    opening = clinic.next_opening(sp(f"{day} 06:00"))
    assert opening.utcoffset() == timedelta(hours=-3)
    assert opening.astimezone(UTC).hour == 11
    assert clinic.is_open(datetime.fromisoformat(f"{day}T11:00:00+00:00"))
    assert not clinic.is_open(datetime.fromisoformat(f"{day}T10:59:00+00:00"))


def test_a_clinic_in_another_zone() -> None:
    lisbon = BusinessHours(Hours(weekly=week(seg="09:00-17:00"), timezone="Europe/Lisbon"))
    # Sunday 29 Mar 2026 is the day Lisbon moves to summer time (UTC+1).
    opening = lisbon.next_opening(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    assert opening == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    assert opening.utcoffset() == timedelta(hours=1)


def test_shift_into_open(clinic: BusinessHours) -> None:
    inside = datetime(2026, 11, 24, 13, 15, tzinfo=UTC)  # 10:15 in São Paulo
    assert clinic.shift_into_open(inside) == inside
    assert clinic.shift_into_open(sp("2026-11-28 13:00")) == sp("2026-11-30 08:00")
    assert clinic.shift_into_open(sp("2026-12-25 09:00")) == sp("2026-12-26 08:00")


@pytest.mark.parametrize(
    ("now", "line"),
    [
        pytest.param("2026-11-24 10:00", "Aberta agora (fecha às 18h).", id="weekday"),
        pytest.param("2026-11-28 10:00", "Aberta agora (fecha às 12h).", id="saturday"),
        pytest.param(
            "2026-11-28 13:00",
            "Fechada agora. Próxima abertura: segunda-feira às 8h.",
            id="saturday-afternoon",
        ),
        pytest.param(
            "2026-11-29 23:00", "Fechada agora. Próxima abertura: amanhã às 8h.", id="sunday-night"
        ),
        pytest.param(
            "2026-11-24 07:00", "Fechada agora. Próxima abertura: hoje às 8h.", id="early"
        ),
    ],
)
def test_status_line(clinic: BusinessHours, now: str, line: str) -> None:
    assert status_line(clinic, sp(now)) == line


def test_status_line_uses_the_clock() -> None:
    hours = BusinessHours(
        load_clinic(bundled_catalog_path() / "clinic.yaml").hours,
        ManualClock(sp("2026-11-29 23:00")),
    )
    assert status_line(hours) == "Fechada agora. Próxima abertura: amanhã às 8h."
    assert hours.describe_next_opening() == "amanhã às 8h"
    assert hours.now().tzinfo == SP


def test_status_line_lunch() -> None:
    assert status_line(LUNCH, sp("2026-11-24 09:00")) == "Aberta agora (fecha às 12h)."
    assert (
        status_line(LUNCH, sp("2026-11-24 12:10"))
        == "Fechada agora. Próxima abertura: hoje às 13h."
    )


def test_open_until_midnight_and_past_it() -> None:
    late = BusinessHours(Hours(weekly=week(seg="18:00-24:00", ter="00:00-02:00, 08:00-10:00")))
    assert late.closing_time(sp("2026-11-23 23:00")) == sp("2026-11-24 02:00")
    assert late.is_open(sp("2026-11-24 01:00"))
    # Tuesday 00:00 continues Monday night: the next real opening is Tuesday 08:00.
    assert late.next_opening(sp("2026-11-23 23:00")) == sp("2026-11-24 08:00")
    assert status_line(late, sp("2026-11-23 23:00")) == "Aberta agora (fecha amanhã às 2h)."
    only_night = BusinessHours(Hours(weekly=week(seg="20:00-24:00")))
    assert status_line(only_night, sp("2026-11-23 21:00")) == "Aberta agora (fecha à meia-noite)."


def test_hours_not_set_means_always_open() -> None:
    always = BusinessHours(Hours())
    when = sp("2026-11-29 03:00")
    assert always.is_open(when)
    assert always.shift_into_open(when) == when
    assert status_line(always, when) == "Aberta agora."


def test_no_opening_ahead_raises() -> None:
    mondays = tuple(str(date(2026, 11, 30) + timedelta(weeks=n)) for n in range(30))
    rare = BusinessHours(Hours(weekly=week(seg="08:00-09:00"), holidays=mondays))
    with pytest.raises(HoursError):
        rare.next_opening(sp("2026-11-24 10:00"))
    assert status_line(rare, sp("2026-11-24 10:00")).startswith("Fechada agora, sem abertura")


def test_bad_input() -> None:
    with pytest.raises(HoursError, match="time zone"):
        BusinessHours(Hours(timezone="America/Atlantida"))
    with pytest.raises(ValueError, match="aware"):
        BusinessHours(Hours()).is_open(datetime(2026, 11, 24, 10, 0))


@pytest.mark.parametrize(
    ("hour", "minute", "words"),
    [
        pytest.param(8, 0, "às 8h", id="8h"),
        pytest.param(8, 30, "às 8h30", id="8h30"),
        pytest.param(13, 5, "às 13h05", id="13h05"),
        pytest.param(1, 0, "à 1h", id="1h"),
        pytest.param(0, 0, "à meia-noite", id="midnight"),
        pytest.param(0, 30, "à 0h30", id="0h30"),
    ],
)
def test_at_phrase(hour: int, minute: int, words: str) -> None:
    assert at_phrase(datetime(2026, 11, 24, hour, minute, tzinfo=SP)) == words


# -- `clinicflow hours`: the command reads the system clock unless told a moment ------------


@pytest.mark.parametrize(
    ("at", "line"),
    [
        pytest.param(
            "2026-12-06T02:00",
            "Em domingo, 6 de dezembro de 2026, às 2h: fechada. "
            "Próxima abertura: segunda-feira, 7 de dezembro de 2026, às 8h.",
            id="sunday-2h",
        ),
        pytest.param(
            "2026-12-25T12:00",
            "Em sexta-feira, 25 de dezembro de 2026, às 12h: fechada. "
            "Próxima abertura: sábado, 26 de dezembro de 2026, às 8h.",
            id="christmas",
        ),
        pytest.param(
            "2026-12-02T19:30",
            "Em quarta-feira, 2 de dezembro de 2026, às 19h30: fechada. "
            "Próxima abertura: quinta-feira, 3 de dezembro de 2026, às 8h.",
            id="wednesday-19h30",
        ),
        pytest.param(
            "2026-12-02T10:00",
            "Em quarta-feira, 2 de dezembro de 2026, às 10h: aberta (fecha às 18h).",
            id="wednesday-10h",
        ),
        pytest.param(
            "2026-12-05T09:00",
            "Em sábado, 5 de dezembro de 2026, às 9h: aberta (fecha às 12h).",
            id="saturday-9h",
        ),
    ],
)
def test_hours_command_at_a_moment(at: str, line: str) -> None:
    from click.testing import CliRunner

    from clinicflow.cli import main

    result = CliRunner().invoke(main, ["hours", "--at", at])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == line


def test_hours_command_defaults_to_now() -> None:
    """Without --at the command answers for the system clock: whatever the hour, one of the
    two forms, and the same line status_line gives for that moment."""
    from click.testing import CliRunner

    from clinicflow.cli import main

    result = CliRunner().invoke(main, ["hours"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(("Aberta agora", "Fechada agora"))


def test_bundled_holidays_close_the_clinic(clinic: BusinessHours) -> None:
    """The catalog's holiday list (pinned dates, never today's) closes whole days."""
    assert not clinic.is_open(sp("2026-12-25 10:00"))  # Natal
    assert not clinic.is_open(sp("2027-04-21 10:00"))  # Tiradentes
    assert clinic.is_open(sp("2026-12-24 10:00"))


@pytest.mark.parametrize(
    ("at", "line"),
    [
        pytest.param(
            "2026-12-25T12:00",
            "Em sexta-feira, 25 de dezembro de 2026, às 12h: fechada. "
            "Próxima abertura: sábado, 26 de dezembro de 2026, às 8h.",
            id="christmas-no-agora",
        ),
        pytest.param(
            "2026-12-01T10:00-03:00",
            "Em terça-feira, 1 de dezembro de 2026, às 10h: aberta (fecha às 18h).",
            id="offset",
        ),
        pytest.param(
            "2026-12-01T13:00Z",
            "Em terça-feira, 1 de dezembro de 2026, às 10h: aberta (fecha às 18h).",
            id="utc-z",
        ),
        pytest.param(
            "2026-12-01",
            "Em terça-feira, 1 de dezembro de 2026, à meia-noite: fechada. "
            "Próxima abertura: terça-feira, 1 de dezembro de 2026, às 8h.",
            id="date-alone",
        ),
    ],
)
def test_cli_hours_at_a_moment_names_it_and_takes_offsets_and_dates(at: str, line: str) -> None:
    from click.testing import CliRunner

    from clinicflow.cli import main

    result = CliRunner().invoke(main, ["hours", "--at", at])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == line
    assert "agora" not in result.output


def test_cli_hours_at_refuses_a_non_moment_in_portuguese() -> None:
    from click.testing import CliRunner

    from clinicflow.cli import main

    result = CliRunner().invoke(main, ["hours", "--at", "amanhã"])
    assert result.exit_code == 2 and "não é um momento" in result.output


def test_cli_classify_without_text_is_a_usage_error() -> None:
    from click.testing import CliRunner

    from clinicflow.cli import main

    result = CliRunner().invoke(main, ["classify"])
    assert result.exit_code == 2
    assert "Usage:" in result.output and '"-"' in result.output
