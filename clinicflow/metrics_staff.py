"""The report's figures about the staff: response time per person, and appointments booked.

- **Response time per person**: for each hand-off of the cohort, the time to the first
  response recorded in ``staff_actions`` after it (a reply, a hand-back, a booking or a close
  through the inbox, the API or a WhatsApp command; the runner's own automatic actions do not
  count), credited to whoever gave it. Median and nearest-rank p90 per person, as
  :class:`~clinicflow.metrics.Duration`. Replies typed on the clinic's shared phone have no
  name and count only in the overall ``human_response``.
- **Appointments**: conversations of the cohort marked scheduled with the appointment's date
  and time (``leads.appointment_at``), counted by the clinic-local day of the appointment.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from clinicflow.clock import iso
from clinicflow.metrics_history import ChatFacts, parse_at
from clinicflow.staff.audit import responses
from clinicflow.storage import Store


@dataclass(frozen=True)
class StaffResponse:
    """How fast one person answered the hand-offs she was the first to answer."""

    name: str
    count: int
    median_s: float | None
    p90_s: float | None


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, -(-9 * len(ordered) // 10) - 1)]


def staff_responses(
    store: Store, chats: list[ChatFacts], ref: datetime
) -> tuple[StaffResponse, ...]:
    """Response time per person (see the module docstring), sorted by name."""
    ids = [c.chat_id for c in chats if c.handoffs]
    found = responses(store, ids, iso(ref)) if ids else {}
    seconds: dict[str, list[float]] = defaultdict(list)
    for chat in chats:
        actions = [(parse_at(at), who) for at, who in found.get(chat.chat_id, [])]
        for handoff in chat.handoffs:
            first = next(((at, who) for at, who in actions if at >= handoff.at), None)
            if first is not None:
                seconds[first[1]].append((first[0] - handoff.at).total_seconds())
    return tuple(
        StaffResponse(
            name, len(values), round(statistics.median(values), 1), round(_p90(values), 1)
        )
        for name, values in sorted(seconds.items())
    )


def appointments_by_day(
    store: Store, chat_ids: list[str], ref: datetime, zone: ZoneInfo
) -> tuple[tuple[str, int], ...]:
    """Booked appointments of these conversations by clinic-local day, marked up to ``ref``."""
    days: Counter[str] = Counter()
    cap = iso(ref)
    for start in range(0, len(chat_ids), 500):
        chunk = chat_ids[start : start + 500]
        rows = store.query(
            f"SELECT appointment_at FROM leads WHERE chat_id IN ({','.join('?' * len(chunk))}) "
            "AND appointment_at IS NOT NULL AND scheduled_at <= ?",
            [*chunk, cap],
        )
        for row in rows:
            days[parse_at(row["appointment_at"]).astimezone(zone).date().isoformat()] += 1
    return tuple(sorted(days.items()))


__all__ = ["StaffResponse", "appointments_by_day", "staff_responses"]
