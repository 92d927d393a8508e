"""Business hours: is the clinic open, when does it open next, and how to say it in pt-BR.

:class:`BusinessHours` wraps the :class:`~clinicflow.model.Hours` of ``clinic.yaml`` (weekly
ranges, time zone, and the closed days of :class:`~clinicflow.closures.ClosedDays`: public
holidays of the clinic's country and state plus the catalog's own closures). Every answer is
computed in the clinic's time zone, whatever the zone of the datetime asked about; naive
datetimes are refused. A range is open from its first minute up to, not including, its closing
minute (08:00-18:00 is open at 17:59, closed at 18:00).

A clinic with no weekly ranges at all has not set its hours: it counts as always open (except
on its holidays), so nothing is shifted or announced as closed by accident.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from clinicflow.clock import Clock, SystemClock
from clinicflow.closures import ClosedDays, ClosureError
from clinicflow.errors import ClinicflowError
from clinicflow.model import Hours

__all__ = ["BusinessHours", "HoursError", "at_phrase", "status_line"]

#: How far :meth:`BusinessHours.next_opening` looks ahead, beyond one day per holiday.
SEARCH_DAYS = 14
DAY_MINUTES = 24 * 60

WEEKDAY_NAMES = (
    "segunda-feira",
    "terça-feira",
    "quarta-feira",
    "quinta-feira",
    "sexta-feira",
    "sábado",
    "domingo",
)
MONTH_NAMES = (
    "janeiro",
    "fevereiro",
    "março",
    "abril",
    "maio",
    "junho",
    "julho",
    "agosto",
    "setembro",
    "outubro",
    "novembro",
    "dezembro",
)

Ranges = tuple[tuple[int, int], ...]


class HoursError(ClinicflowError):
    """The opening hours cannot answer: unknown time zone, or no opening ahead."""


def _merge(ranges: Ranges) -> Ranges:
    """Sorted ranges with touching or overlapping ones joined (12:00-13:00 + 13:00-18:00)."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def at_phrase(when: datetime) -> str:
    """The time of day as said in pt-BR: "às 8h", "às 8h30", "à 1h", "à meia-noite"."""
    hour, minute = when.hour, when.minute
    if hour == 0 and minute == 0:
        return "à meia-noite"
    clock = f"{hour}h{minute:02d}" if minute else f"{hour}h"
    return f"à {clock}" if hour in (0, 1) else f"às {clock}"


class BusinessHours:
    """The clinic's opening hours, closed days and time zone.

    Args:
        hours: the ``hours`` of the clinic (``catalog.clinic.hours``).
        clock: the time source for "now"; default the system clock.

    Raises:
        HoursError: the time zone is not known to the system's tz database, or the holiday
            calendar's country or state is unknown.
    """

    def __init__(self, hours: Hours, clock: Clock | None = None) -> None:
        try:
            self.tz = ZoneInfo(hours.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise HoursError(f"unknown time zone {hours.timezone!r}") from exc
        self.hours = hours
        self.clock: Clock = clock or SystemClock()
        weekly = tuple(_merge(tuple(day)) for day in hours.weekly)
        self.configured = any(weekly)
        self.weekly: tuple[Ranges, ...] = weekly if self.configured else (((0, DAY_MINUTES),),) * 7
        try:
            self.holidays = ClosedDays(hours)
        except ClosureError as exc:
            raise HoursError(str(exc)) from exc
        self._horizon = SEARCH_DAYS + len(self.holidays) + 1

    # -- the calendar -----------------------------------------------------------------------

    def now(self) -> datetime:
        """The clock's current time in the clinic's zone."""
        return self.local(self.clock.now())

    def local(self, when: datetime) -> datetime:
        """``when`` in the clinic's zone (ValueError for a naive datetime)."""
        if when.tzinfo is None or when.utcoffset() is None:
            raise ValueError("BusinessHours needs an aware datetime")
        return when.astimezone(self.tz)

    def ranges_on(self, day: date) -> Ranges:
        """The opening ranges (minutes of the day) of a local date; none on holidays."""
        return () if day in self.holidays else self.weekly[day.weekday()]

    def _at(self, day: date, minute: int) -> datetime:
        # 24:00 is the next day's midnight; combining then adding keeps the local wall time.
        return datetime.combine(day, time(), tzinfo=self.tz) + timedelta(minutes=minute)

    def _is_opening(self, day: date, start: int) -> bool:
        """Whether a range start really opens (not the continuation of yesterday's 24:00)."""
        if start != 0:
            return True
        before = self.ranges_on(day - timedelta(days=1))
        return not (before and before[-1][1] == DAY_MINUTES)

    # -- questions --------------------------------------------------------------------------

    def is_open(self, when: datetime) -> bool:
        """Whether the clinic is open at ``when``."""
        local = self.local(when)
        minute = local.hour * 60 + local.minute
        return any(start <= minute < end for start, end in self.ranges_on(local.date()))

    def next_opening(self, when: datetime) -> datetime:
        """The first moment at or after ``when`` at which the clinic opens.

        When the clinic is open at ``when`` this is its next opening after the current
        range (after lunch, or the next working day), never ``when`` itself unless a range
        starts exactly then. Holidays and closed days are skipped.

        Raises:
            HoursError: no opening within two weeks (plus one day per holiday).
        """
        local = self.local(when)
        for offset in range(self._horizon):
            day = local.date() + timedelta(days=offset)
            for start, _end in self.ranges_on(day):
                opening = self._at(day, start)
                if opening >= local and self._is_opening(day, start):
                    return opening
        raise HoursError(f"the clinic does not open in the {self._horizon} days after {local}")

    def closing_time(self, when: datetime) -> datetime | None:
        """When the range open at ``when`` closes (None: closed now, or never closes)."""
        local = self.local(when)
        if not self.is_open(local):
            return None
        day, minute = local.date(), local.hour * 60 + local.minute
        end = next(end for start, end in self.ranges_on(day) if start <= minute < end)
        for _ in range(self._horizon):
            following = self.ranges_on(day + timedelta(days=1))
            if end != DAY_MINUTES or not following or following[0][0] != 0:
                return self._at(day, end)
            day, end = day + timedelta(days=1), following[0][1]
        return None

    def shift_into_open(self, when: datetime) -> datetime:
        """``when`` itself (in the clinic's zone) if open then, else the next opening."""
        local = self.local(when)
        return local if self.is_open(local) else self.next_opening(local)

    # -- words ------------------------------------------------------------------------------

    def describe_opening(self, opening: datetime, now: datetime | None = None) -> str:
        """An opening time as the secretary would say it, relative to ``now``.

        "hoje às 14h", "amanhã às 8h", "segunda-feira às 8h" (within 6 days), and beyond
        that "na quarta-feira, 2 de dezembro, às 8h30" (with the year when it differs).
        It fits the ``out_of_hours`` text: "volta {proxima_abertura}".
        """
        local = self.local(opening)
        today = self.local(now if now is not None else self.clock.now()).date()
        days = (local.date() - today).days
        at = at_phrase(local)
        if days == 0:
            return f"hoje {at}"
        if days == 1:
            return f"amanhã {at}"
        name = WEEKDAY_NAMES[local.weekday()]
        if 1 < days <= 6:
            return f"{name} {at}"
        article = "no" if local.weekday() >= 5 else "na"
        when = f"{local.day} de {MONTH_NAMES[local.month - 1]}"
        if local.year != today.year:
            when += f" de {local.year}"
        return f"{article} {name}, {when}, {at}"

    def describe_next_opening(self, now: datetime | None = None) -> str:
        """:meth:`describe_opening` of the next opening after ``now`` (default: the clock)."""
        now = now if now is not None else self.clock.now()
        return self.describe_opening(self.next_opening(now), now)


def _full_date(when: datetime) -> str:
    """ "sexta-feira, 25 de dezembro de 2026, às 12h" (no "hoje"/"amanhã": no reference)."""
    name = WEEKDAY_NAMES[when.weekday()]
    return f"{name}, {when.day} de {MONTH_NAMES[when.month - 1]} de {when.year}, {at_phrase(when)}"


def status_line(hours: BusinessHours, now: datetime | None = None, *, asked: bool = False) -> str:
    """One line for ``clinicflow hours``: open or closed now, and the next opening.

    "Aberta agora (fecha às 18h)." or "Fechada agora. Próxima abertura: segunda-feira às 8h."
    With ``asked`` (a moment the user gave, not now) the line names that moment and never
    says "agora": "Em sexta-feira, 25 de dezembro de 2026, às 12h: fechada. Próxima
    abertura: segunda-feira, 28 de dezembro de 2026, às 8h."
    """
    now = hours.local(now if now is not None else hours.clock.now())
    if asked:
        return _status_at(hours, now)
    if hours.is_open(now):
        closing = hours.closing_time(now)
        if closing is None:
            return "Aberta agora."
        if closing.date() == now.date() or closing == hours._at(now.date(), DAY_MINUTES):
            return f"Aberta agora (fecha {at_phrase(closing)})."
        return f"Aberta agora (fecha {hours.describe_opening(closing, now)})."
    try:
        opening = hours.describe_opening(hours.next_opening(now), now)
    except HoursError:
        return "Fechada agora, sem abertura prevista nas próximas semanas."
    return f"Fechada agora. Próxima abertura: {opening}."


def _status_at(hours: BusinessHours, moment: datetime) -> str:
    head = f"Em {_full_date(moment)}"
    if hours.is_open(moment):
        closing = hours.closing_time(moment)
        if closing is None:
            return f"{head}: aberta."
        closing = hours.local(closing)
        if closing.date() == moment.date():
            return f"{head}: aberta (fecha {at_phrase(closing)})."
        return f"{head}: aberta (fecha {_full_date(closing)})."
    try:
        opening = hours.local(hours.next_opening(moment))
    except HoursError:
        return f"{head}: fechada, sem abertura prevista nas semanas seguintes."
    return f"{head}: fechada. Próxima abertura: {_full_date(opening)}."
