"""Closed days: public holidays from the holidays library, plus the catalog's own closures.

Every date is pinned; nothing depends on the year the tests run in.
"""

from __future__ import annotations

import shutil
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from clinicflow.clock import ManualClock
from clinicflow.closures import ClosedDays, ClosureError, parse_closure
from clinicflow.hours import BusinessHours, HoursError
from clinicflow.lint import lint_paths
from clinicflow.loader import bundled_catalog_path, load_clinic
from clinicflow.model import Hours

SP = ZoneInfo("America/Sao_Paulo")
MIN = Path(__file__).parent / "data" / "catalog_min"


def sp(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=SP)


@pytest.fixture(scope="module")
def bundled() -> BusinessHours:
    return BusinessHours(load_clinic(bundled_catalog_path() / "clinic.yaml").hours)


@pytest.mark.parametrize(
    ("day", "closed"),
    [
        pytest.param("2028-02-28", True, id="carnaval-monday-2028"),
        pytest.param("2028-02-29", True, id="carnaval-tuesday-2028"),
        pytest.param("2028-03-01", False, id="ash-wednesday-is-not-kept"),
        pytest.param("2028-04-14", True, id="good-friday-2028"),
        pytest.param("2028-06-15", True, id="corpus-christi-2028"),
        pytest.param("2028-07-10", False, id="an-ordinary-monday"),
        pytest.param("2029-07-09", True, id="sao-paulo-state-holiday-2029"),
        pytest.param("2029-01-25", True, id="yearly-closure-city-anniversary"),
        pytest.param("2031-11-20", True, id="consciencia-negra-2031"),
        pytest.param("2027-10-28", False, id="public-servants-day-is-not-kept"),
    ],
)
def test_the_bundled_clinic_is_closed_on_holidays_of_any_year(
    bundled: BusinessHours, day: str, closed: bool
) -> None:
    assert (date.fromisoformat(day) in bundled.holidays) is closed
    assert bundled.is_open(sp(f"{day} 10:00")) is not closed


def test_the_next_opening_skips_carnaval(bundled: BusinessHours) -> None:
    saturday = sp("2028-02-26 14:00")
    assert bundled.next_opening(saturday) == sp("2028-03-01 08:00")
    assert bundled.describe_next_opening(saturday) == "quarta-feira às 8h"


def test_holiday_names_come_in_portuguese(bundled: BusinessHours) -> None:
    assert bundled.holidays.name(date(2028, 2, 28)) == "Carnaval"
    assert bundled.holidays.name(date(2028, 12, 25)) == "Natal"
    assert bundled.holidays.name(date(2028, 1, 25)) == "fechamento"
    assert bundled.holidays.name(date(2028, 7, 10)) is None


def test_without_a_country_only_the_catalog_closures_count() -> None:
    hours = Hours(holidays=("2028-02-28",), yearly_closures=("12-24",))
    closed = ClosedDays(hours)
    assert date(2028, 2, 28) in closed and date(2029, 2, 28) not in closed
    assert date(2030, 12, 24) in closed
    assert date(2028, 12, 25) not in closed


def test_an_unknown_calendar_is_an_hours_error() -> None:
    with pytest.raises(HoursError):
        BusinessHours(Hours(country="XX"))
    with pytest.raises(HoursError):
        BusinessHours(Hours(country="BR", subdivision="ZZ"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("2026-12-24", date(2026, 12, 24), id="one-day"),
        pytest.param("01-25", (1, 25), id="yearly"),
        pytest.param("02-29", (2, 29), id="yearly-leap-day"),
    ],
)
def test_parse_closure(text: str, expected: object) -> None:
    assert parse_closure(text) == expected


@pytest.mark.parametrize("text", ["2026-13-01", "13-01", "25/01", "natal", "02-30"])
def test_parse_closure_refuses(text: str) -> None:
    with pytest.raises(ClosureError):
        parse_closure(text)


def test_the_old_holidays_key_still_works() -> None:
    clinic = load_clinic(MIN / "clinic.yaml")
    assert clinic.hours.holidays == ("2026-12-25",)
    assert clinic.hours.country == "BR"


def _catalog(tmp_path: Path, hours_lines: str) -> Path:
    """catalog_min with its ``hours:`` block replaced by ``hours_lines``."""
    folder = tmp_path / "catalog"
    shutil.copytree(MIN, folder)
    path = folder / "clinic.yaml"
    lines = path.read_text("utf-8").splitlines()
    start = lines.index("hours:")
    end = lines.index("staff:")
    weekly = ["  timezone: America/Sao_Paulo", "  weekly:", '    seg: "08:00-18:00"']
    block = ["hours:", *weekly, *hours_lines.strip("\n").splitlines()]
    path.write_text("\n".join([*lines[:start], *block, *lines[end:]]) + "\n", "utf-8")
    return folder


def _codes(folder: Path, when: datetime) -> list[tuple[str, int, str]]:
    problems = lint_paths([folder], ManualClock(when))
    return [(p.code, p.line, p.severity) for p in problems]


def test_lint_points_at_a_bad_closure(tmp_path: Path) -> None:
    folder = _catalog(tmp_path, '  country: BR\n  closures: ["01-25", "25/01"]\n')
    problems = lint_paths([folder], ManualClock(datetime(2026, 6, 1, tzinfo=UTC)))
    [bad] = [p for p in problems if p.severity == "error"]
    assert (bad.code, bad.line) == ("bad-type", 11)
    assert "'25/01' não é uma data" in bad.message


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param("  country: XX\n", ("unknown-calendar", 10, "error"), id="country"),
        pytest.param(
            "  country: BR\n  subdivision: ZZ\n", ("unknown-calendar", 11, "error"), id="state"
        ),
        pytest.param(
            "  country: BR\n  optional_holidays: [Carnavau]\n",
            ("unknown-holiday", 11, "error"),
            id="optional-holiday",
        ),
        pytest.param("  subdivision: SP\n", ("unknown-calendar", 10, "error"), id="state-alone"),
    ],
)
def test_lint_checks_the_calendar(
    tmp_path: Path, lines: str, expected: tuple[str, int, str]
) -> None:
    folder = _catalog(tmp_path, lines)
    assert expected in _codes(folder, datetime(2026, 6, 1, tzinfo=UTC))


def test_lint_suggests_the_holiday_meant(tmp_path: Path) -> None:
    folder = _catalog(tmp_path, "  country: BR\n  optional_holidays: [Carnavau]\n")
    problems = lint_paths([folder], ManualClock(datetime(2026, 6, 1, tzinfo=UTC)))
    [bad] = [p for p in problems if p.code == "unknown-holiday"]
    assert "quis dizer 'Carnaval'" in bad.message


def test_lint_warns_when_listed_holidays_run_out(tmp_path: Path) -> None:
    folder = _catalog(tmp_path, '  closures: ["2026-12-25", "2027-12-25"]\n')
    assert _codes(folder, datetime(2026, 6, 1, tzinfo=UTC)) == []
    [warning] = lint_paths([folder], ManualClock(datetime(2027, 1, 10, tzinfo=UTC)))
    assert (warning.code, warning.severity, warning.line) == (
        "holidays-not-covered",
        "warning",
        10,
    )
    assert "terminam em 2027-12-25" in warning.message and "country: BR" in warning.message


def test_lint_warns_when_there_is_no_calendar_at_all(tmp_path: Path) -> None:
    folder = _catalog(tmp_path, "")
    [warning] = lint_paths([folder], ManualClock(datetime(2026, 6, 1, tzinfo=UTC)))
    assert (warning.code, warning.severity) == ("holidays-not-covered", "warning")
    assert "não há feriados" in warning.message


def test_a_country_covers_the_years_the_library_knows(tmp_path: Path) -> None:
    folder = _catalog(tmp_path, "  country: BR\n  subdivision: SP\n")
    assert _codes(folder, datetime(2029, 3, 1, tzinfo=UTC)) == []
    assert _codes(folder, datetime(2090, 3, 1, tzinfo=UTC)) == []
    late = _codes(folder, datetime(2100, 3, 1, tzinfo=UTC))
    assert [code for code, _, _ in late] == ["holidays-not-covered"]


def test_the_bundled_catalog_lints_clean_in_any_year() -> None:
    for year in (2026, 2029, 2041):
        problems = lint_paths(
            [bundled_catalog_path()], ManualClock(datetime(year, 7, 1, tzinfo=UTC))
        )
        assert problems == [], year
