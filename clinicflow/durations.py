"""Small time notations of the catalog: durations (``1h30m``) and weekly opening hours.

Both parsers raise :class:`BadTimeText` with a message written for a clinic secretary; the
loader turns it into a located ``bad-duration`` / ``bad-type`` problem.
"""

from __future__ import annotations

import re

from clinicflow.errors import ClinicflowError
from clinicflow.text import fold

_DURATION_RE = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m(?:in)?)?\s*$")
_RANGE_RE = re.compile(r"^\s*(\d{1,2})(?::(\d{2}))?\s*-\s*(\d{1,2})(?::(\d{2}))?\s*$")

#: Weekday keys accepted in ``hours.weekly``, Portuguese or English, to 0=Monday.
WEEKDAYS: dict[str, int] = {
    "seg": 0,
    "ter": 1,
    "qua": 2,
    "qui": 3,
    "sex": 4,
    "sab": 5,
    "dom": 6,
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}

_CLOSED = {"fechado", "closed", "fechada"}


class BadTimeText(ClinicflowError):
    """A duration or an opening-hours text could not be read."""


def parse_duration(text: str) -> int:
    """Seconds in a duration such as ``30m``, ``2h``, ``1d`` or ``1h30m``.

    Raises:
        BadTimeText: the text is not such a duration or is zero.
    """
    match = _DURATION_RE.match(text.lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise BadTimeText(f"'{text}' não é uma duração; escreva por exemplo 30m, 2h, 1d ou 1h30m")
    days, hours, minutes = (int(group) if group else 0 for group in match.groups())
    seconds = days * 86400 + hours * 3600 + minutes * 60
    if seconds <= 0:
        raise BadTimeText(f"a duração '{text}' é zero; use um tempo maior, como 30m")
    return seconds


def weekday(key: str) -> int:
    """0=Monday for ``seg``/``mon`` … 6=Sunday for ``dom``/``sun`` (accents ignored).

    Raises:
        BadTimeText: not a weekday key.
    """
    folded = fold(key).strip()
    # Full names work too: "segunda", "sábado", "monday" share their first three letters.
    day = WEEKDAYS.get(folded[:3]) if len(folded) >= 3 else None
    if day is None:
        raise BadTimeText(f"'{key}' não é um dia da semana; use seg, ter, qua, qui, sex, sab, dom")
    return day


def parse_day_hours(text: str) -> tuple[tuple[int, int], ...]:
    """Opening ranges of one day, in minutes: ``"08:00-12:00, 13:00-18:00"`` or ``fechado``.

    Raises:
        BadTimeText: a range is malformed, out of the day or closes before it opens.
    """
    if fold(text).strip() in _CLOSED or not text.strip():
        return ()
    ranges: list[tuple[int, int]] = []
    for part in re.split(r"[,;]| e ", text):
        match = _RANGE_RE.match(part)
        if match is None:
            raise BadTimeText(
                f"'{part.strip()}' não é um horário; escreva como 08:00-12:00, 13:00-18:00 "
                "ou fechado"
            )
        h1, m1, h2, m2 = (int(group) if group else 0 for group in match.groups())
        start, end = h1 * 60 + m1, h2 * 60 + m2
        for hour, minute in ((h1, m1), (h2, m2)):
            if hour > 24 or minute > 59 or (hour == 24 and minute > 0):
                raise BadTimeText(
                    f"em '{part.strip()}', {hour:02d}:{minute:02d} não é uma hora do dia "
                    "(vai de 00:00 a 24:00)"
                )
        if start >= end:
            raise BadTimeText(
                f"o horário '{part.strip()}' não faz sentido (abre depois de fechar?)"
            )
        ranges.append((start, end))
    return tuple(sorted(ranges))
