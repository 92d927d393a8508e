"""When the patient can come: ``date`` and ``period`` slot parsers.

Private to :mod:`clinicflow.slots`. Dates are read written out ("12/03", "dia 12 de março")
or, when asked, relative to ``today`` ("amanhã", "sexta", "15"); a period from its words
("de manhã", "tanto faz") or, when asked, from an hour ("às 15h").
"""

from __future__ import annotations

import datetime as dt
import re

from clinicflow._slot_message import _affirmed, _alts, _flat, _index, _Message, _spans

_MONTHS: dict[str, int] = {
    name: number
    for number, names in enumerate(
        _alts(
            "janeiro jan|fevereiro fev|marco mar|abril abr|maio mai|junho jun|julho jul|agosto ago|"
            "setembro set|outubro out|novembro nov|dezembro dez"
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
# On folded text. Alternatives are tried in order at one position, so "dia 12/03" and
# "dia 12 de março" are read whole before the bare "dia 12".
_DATE_RE = re.compile(
    r"(?<![\w/.-])(?:dia\s+)?(?:"
    r"(?P<d1>\d{1,2})(?P<sep>[/.-])(?P<m1>\d{1,2})(?:(?P=sep)(?P<y1>\d{4}|\d{2}))?"
    r"(?![\w/]|[.-]\d)"
    rf"|(?P<d2>\d{{1,2}})o?\s*(?:de\s+)?(?P<m2>{_MONTH_ALT})(?:\s*(?:de\s+)?(?P<y2>\d{{4}}))?"
    r"(?!\w)"
    r")"
    r"|\bdia\s+(?P<d3>\d{1,2})o?(?!\w|[/.-]\d)"
)
_WEEKDAYS = {
    "segunda": 0,
    "terca": 1,
    "quarta": 2,
    "quinta": 3,
    "sexta": 4,
    "sabado": 5,
    "domingo": 6,
}
_RELATIVE_DAYS = _index(
    _flat(
        {
            "0": "hoje",
            "1": "amanha",
            "2": "depois de amanha|depois amanha",
            "next_week": "semana que vem|proxima semana|semana seguinte",
        }
    )
)


def _valid_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _next_day_of_month(day: int, today: dt.date) -> dt.date | None:
    for ahead in range(13):
        year, month0 = divmod(today.month - 1 + ahead, 12)
        found = _valid_date(today.year + year, month0 + 1, day)
        if found and found >= today:
            return found
    return None


def _without_year(month: int, day: int, today: dt.date) -> dt.date | None:
    for year in range(today.year, today.year + 5):  # five years reach the next 29/02
        found = _valid_date(year, month, day)
        if found and found >= today:
            return found
    return None


def _explicit_dates(msg: _Message, today: dt.date, strict: bool) -> set[dt.date]:
    found: set[dt.date] = set()
    for m in _DATE_RE.finditer(msg.folded):
        date: dt.date | None
        if m.group("d3"):
            date = _next_day_of_month(int(m.group("d3")), today)
        else:
            if m.group("d1") and strict and m.group("sep") != "/":
                continue  # "1.5" or "3-4" unasked is a quantity, not a date
            day = int(m.group("d1") or m.group("d2"))
            month = int(m.group("m1")) if m.group("m1") else _MONTHS[m.group("m2")]
            year_text = m.group("y1") or m.group("y2")
            if year_text:
                year = int(year_text) + (2000 if len(year_text) == 2 else 0)
                date = _valid_date(year, month, day)
            else:
                date = _without_year(month, day, today)
        if date:
            found.add(date)
    return found


def _relative_dates(msg: _Message, today: dt.date) -> set[dt.date]:
    tokens = msg.tokens
    found: set[dt.date] = set()
    next_week = False
    for _, _, key in _spans(tokens, _RELATIVE_DAYS):
        if key == "next_week":
            next_week = True
        else:
            found.add(today + dt.timedelta(days=int(key)))
    for token in tokens:
        weekday = _WEEKDAYS.get(token)
        if weekday is None:
            continue
        if next_week:  # "segunda da semana que vem": that day of next calendar week
            monday = today - dt.timedelta(days=today.weekday()) + dt.timedelta(days=7)
            found.add(monday + dt.timedelta(days=weekday))
        else:
            found.add(today + dt.timedelta(days=(weekday - today.weekday() - 1) % 7 + 1))
    if len(tokens) == 1 and tokens[0].isdigit() and 1 <= int(tokens[0]) <= 31:
        day = _next_day_of_month(int(tokens[0]), today)  # the whole answer is "15"
        if day:
            found.add(day)
    return found


def _parse_date(msg: _Message, today: dt.date, strict: bool) -> str | None:
    found = _explicit_dates(msg, today, strict)
    if not strict:
        found |= _relative_dates(msg, today)
    return found.pop().isoformat() if len(found) == 1 else None


# --- period -----------------------------------------------------------------------------------

_PERIOD_TABLE = {
    "manhã": "manha|de manha|pela manha|manhazinha|periodo da manha|matutino",
    "tarde": "tarde|a tarde|de tarde|depois do almoco|apos o almoco|vespertino",
    "noite": "noite|a noite|de noite|depois do trabalho|apos o trabalho|depois do expediente|"
    "noturno",
    "qualquer": "qualquer horario|qualquer hora|qualquer um|qualquer uma|qualquer periodo|"
    "qualquer turno|tanto faz|indiferente|sem preferencia|nao tenho preferencia",
    # Phrases that contain a period word without meaning a preference; they hide it.
    "": "bom dia|boa tarde|boa noite|mais tarde|tarde demais|ontem a noite|ontem de noite|"
    "ontem a tarde|ontem de manha|noite passada|a noite toda|a noite inteira|noite toda|"
    "qualquer dia",
}
_PERIODS_STRICT = _index(_flat(_PERIOD_TABLE))
# Asked for a period, "cedo" or "qualquer" is an answer; unasked, "acordei cedo" is not.
_PERIODS_LENIENT = _index(
    _flat(
        {
            **_PERIOD_TABLE,
            "manhã": _PERIOD_TABLE["manhã"] + "|cedo|cedinho|bem cedo",
            "qualquer": _PERIOD_TABLE["qualquer"] + "|qualquer",
        }
    )
)
_HOUR_RE = re.compile(
    r"(?:(?P<pre>\b[a-z]+)\s+)?(?<![\d/:.,])(?P<h>\d{1,2})"
    r"(?:\s*(?:h|hs|hrs?|horas?)\b|\s*(?:h|:)\s*\d{2}\b|(?=\s*$))"
)
_HOUR_BLOCKERS = frozenset({"ha", "faz", "por", "durante", "mais", "de", "tenho", "com", "dia"})


def _period_of_hour(hour: int) -> str | None:
    if 6 <= hour < 12:
        return "manhã"
    if 12 <= hour < 18:
        return "tarde"
    if 18 <= hour <= 23:
        return "noite"
    return None  # "às 2" is more often 14h than 2h: too ambiguous to store


def _parse_period(msg: _Message, strict: bool) -> str | None:
    found = _affirmed(msg.clauses, _PERIODS_STRICT if strict else _PERIODS_LENIENT)
    found.discard("")
    if "qualquer" in found:
        return "qualquer"
    if not found and not strict:
        for m in _HOUR_RE.finditer(msg.folded):
            if m.group("pre") in _HOUR_BLOCKERS:
                continue
            period = _period_of_hour(int(m.group("h")))
            if period:
                found.add(period)
    return found.pop() if len(found) == 1 else None
