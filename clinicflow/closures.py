"""The days a clinic is closed: public holidays from the ``holidays`` library plus its own.

``clinic.yaml`` names the clinic's country and state (``hours.country: BR``,
``hours.subdivision: SP``); the public holidays of every year come from the ``holidays``
library, so the calendar never runs out. Optional days the clinic also keeps (``Carnaval``,
``Corpus Christi``: "ponto facultativo" in Brazil) are named in ``hours.optional_holidays``.
The catalog's own ``closures`` come on top: one day (``2026-12-24``) or the same day every year
(``01-25``, a city's anniversary).

:class:`ClosedDays` answers ``day in closed`` and the holiday's name; the library is imported
only when a country is set, and each year is computed once.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from clinicflow.errors import ClinicflowError
from clinicflow.model import Hours

__all__ = [
    "ClosedDays",
    "ClosureError",
    "calendar_problems",
    "coverage_gap",
    "parse_closure",
]

#: Days ahead that lint wants the calendar to cover.
COVERAGE_DAYS = 365

_YEARLY = re.compile(r"^(\d{2})-(\d{2})$")


class ClosureError(ClinicflowError):
    """A closure or the holiday calendar of ``clinic.yaml`` cannot be used."""


def parse_closure(text: str) -> date | tuple[int, int]:
    """A closure as written in clinic.yaml: ``YYYY-MM-DD`` (one day) or ``MM-DD`` (yearly).

    Raises:
        ClosureError: neither form, or not a real day.
    """
    text = text.strip()
    yearly = _YEARLY.match(text)
    try:
        if yearly:
            month, day = int(yearly.group(1)), int(yearly.group(2))
            date(2024, month, day)  # a leap year: 02-29 is a valid yearly closure
            return month, day
        return date.fromisoformat(text)
    except ValueError:
        raise ClosureError(
            f"'{text}' não é uma data: use ano-mês-dia (2026-12-24) para um dia só "
            "ou mês-dia (01-25) para todo ano"
        ) from None


def _library(
    country: str, subdivision: str | None, year: int | None = None, category: str = "public"
) -> Any:
    """The library's calendar of one year (none: just check the names), or ClosureError."""
    try:
        import holidays
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ClosureError("the holidays library is not installed") from exc
    try:
        return holidays.country_holidays(
            country,
            subdiv=subdivision,
            years=() if year is None else year,
            categories=(category,),
            language="pt_BR" if country.upper() == "BR" else None,
        )
    except NotImplementedError as exc:
        raise ClosureError(str(exc)) from None


def _names(calendar: Any) -> dict[date, list[str]]:
    return {day: str(names).split("; ") for day, names in calendar.items()}


class ClosedDays:
    """Every day the clinic is closed all day (see the module docstring).

    Args:
        hours: the clinic's ``hours`` (country, subdivision, optional holidays, closures).

    Raises:
        ClosureError: an unknown country or subdivision, or a malformed closure.
    """

    def __init__(self, hours: Hours) -> None:
        self.country = hours.country
        self.subdivision = hours.subdivision
        self.optional = frozenset(name.casefold() for name in hours.optional_holidays)
        self.dated: frozenset[date] = frozenset(date.fromisoformat(d) for d in hours.holidays)
        yearly: set[tuple[int, int]] = set()
        for text in hours.yearly_closures:
            parsed = parse_closure(text)
            if isinstance(parsed, tuple):
                yearly.add(parsed)
        self.yearly = frozenset(yearly)
        if self.country:
            calendar = _library(self.country, self.subdivision)
            self._years_known = range(calendar.start_year, calendar.end_year + 1)
        else:
            self._years_known = range(0)
        self._years: dict[int, dict[date, str]] = {}
        self._lock = threading.Lock()

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.name(day) is not None

    def __len__(self) -> int:
        """How many days the search for an opening may have to skip, beyond the usual ones."""
        return len(self.dated) + len(self.yearly) + (7 if self.country else 0)

    def name(self, day: date) -> str | None:
        """Why the clinic is closed on ``day`` ("Natal", "fechamento"), or None if it is not."""
        found = self.public(day.year).get(day)
        if found is not None:
            return found
        if day in self.dated or (day.month, day.day) in self.yearly:
            return "fechamento"
        return None

    def public(self, year: int) -> dict[date, str]:
        """The library's holidays of ``year`` the clinic keeps (public, and optional by name)."""
        if year not in self._years_known:
            return {}
        with self._lock:
            cached = self._years.get(year)
            if cached is None:
                cached = self._years[year] = self._compute(year)
            return cached

    def _compute(self, year: int) -> dict[date, str]:
        country = str(self.country)
        out = {day: names[0] for day, names in _names(
            _library(country, self.subdivision, year)
        ).items()}  # fmt: skip
        if self.optional:
            optional = _names(_library(country, self.subdivision, year, "optional"))
            for day, names in optional.items():
                kept = [name for name in names if name.casefold() in self.optional]
                if kept and day not in out:
                    out[day] = kept[0]
        return out


def optional_names(country: str, subdivision: str | None, years: Iterable[int]) -> set[str]:
    """The names of the country's optional holidays in those years (for lint's suggestions)."""
    return {
        name
        for year in years
        for names in _names(_library(country, subdivision, year, "optional")).values()
        for name in names
    }


def calendar_problems(hours: Hours, today: date) -> list[tuple[str, str, str]]:
    """What is wrong with the holiday calendar: ``(field, code, message)`` for lint.

    Errors: an unknown country or subdivision, an optional holiday the country does not have.
    """
    problems: list[tuple[str, str, str]] = []
    if hours.subdivision and not hours.country:
        problems.append(
            ("subdivision", "unknown-calendar", "hours.subdivision precisa de hours.country")
        )
    if not hours.country:
        if hours.optional_holidays:
            problems.append(
                (
                    "optional_holidays",
                    "unknown-calendar",
                    "hours.optional_holidays precisa de hours.country (por exemplo BR)",
                )
            )
        return problems
    try:
        _library(hours.country, hours.subdivision)
    except ClosureError:
        field = "subdivision" if hours.subdivision and _known(hours.country) else "country"
        problems.append((field, "unknown-calendar", _calendar_hint(hours, field)))
        return problems
    known = optional_names(hours.country, hours.subdivision, range(today.year, today.year + 2))
    folded = {name.casefold(): name for name in known}
    for name in hours.optional_holidays:
        if name.casefold() not in folded:
            import difflib

            close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
            hint = f" (quis dizer '{close[0]}'?)" if close else ""
            listing = ", ".join(sorted(known))
            problems.append(
                (
                    "optional_holidays",
                    "unknown-holiday",
                    f"'{name}' não é um feriado facultativo de {hours.country}{hint}; "
                    f"existem: {listing}",
                )
            )
    return problems


def _known(country: str) -> bool:
    import holidays

    return country.upper() in holidays.list_supported_countries()


def _calendar_hint(hours: Hours, field: str) -> str:
    import holidays

    supported = holidays.list_supported_countries()
    if field == "country":
        return (
            f"o país '{hours.country}' não está no calendário de feriados; use o código de "
            "duas letras (BR)"
        )
    subdivisions = ", ".join(supported.get(str(hours.country).upper(), ()))
    return (
        f"'{hours.subdivision}' não é um estado de {hours.country}; use um destes: {subdivisions}"
    )


def coverage_gap(hours: Hours, today: date) -> str | None:
    """Why the clinic's closed days do not cover the next twelve months, or None.

    With a country, the library's calendar covers any year it knows. Without one, only the
    dated closures exist: once they end (or if there are none) public holidays read as open
    days. A clinic with no weekly hours set counts as always open and is not checked.
    """
    if not any(hours.weekly):
        return None
    until = today + timedelta(days=COVERAGE_DAYS)
    if hours.country:
        try:
            calendar = _library(hours.country, hours.subdivision)
        except ClosureError:
            return None  # reported as unknown-calendar
        if calendar.end_year < until.year:
            return f"o calendário de feriados de {hours.country} termina em {calendar.end_year}"
        return None
    dated = sorted(date.fromisoformat(d) for d in hours.holidays)
    if not dated:
        return (
            "não há feriados: sem hours.country a clínica conta como aberta em todos eles; "
            "use hours.country: BR e hours.subdivision (o estado)"
        )
    if dated[-1] < until:
        return (
            f"os feriados listados terminam em {dated[-1].isoformat()}: depois disso Carnaval, "
            "Sexta-feira Santa e os demais contam como dias abertos; use hours.country: BR e "
            "hours.subdivision (o estado)"
        )
    return None
