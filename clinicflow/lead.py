"""Lead scoring and the lead's status, as pure functions of a conversation's events.

Score: the sum of the catalog's weights over the events (``message`` per patient message,
plus the message's intent, ``slot_filled``, ``faq_answered``, ``menu_choice``). Status moves
``new → engaged → qualified → handed_off → (scheduled | lost)`` and never backwards, except
that a lead lost to silence becomes engaged again if the patient writes back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from clinicflow.model import LeadScoring

STATUSES = ("new", "engaged", "qualified", "handed_off", "scheduled", "lost")
_RANK = {status: rank for rank, status in enumerate(STATUSES)}

# Event types whose weight key is the type itself.
_COUNTED = ("slot_filled", "faq_answered", "menu_choice")


def effective(clinic: LeadScoring, script: LeadScoring | None) -> LeadScoring:
    """The clinic's weights with the script's overrides on top."""
    if script is None:
        return clinic
    merged = dict(clinic.weights)
    merged.update(dict(script.weights))
    qualified = (
        script.qualified_at if script.weights or script.qualified_at else clinic.qualified_at
    )
    return LeadScoring(tuple(merged.items()), qualified, script.pos)


def points(event_type: str, data: Mapping[str, Any], scoring: LeadScoring) -> int:
    """The points one event is worth."""
    if event_type == "message_in":
        intent = data.get("intent") or ""
        return scoring.weight("message") + (scoring.weight(intent) if intent else 0)
    if event_type in _COUNTED:
        return scoring.weight(event_type)
    return 0


def score(events: Iterable[tuple[str, Mapping[str, Any]]], scoring: LeadScoring) -> int:
    """The score of a whole event stream (what the engine keeps incrementally)."""
    return sum(points(event_type, data, scoring) for event_type, data in events)


def advance(
    current: str, *, turns: int, score_now: int, scoring: LeadScoring, handed_off: bool
) -> str:
    """The lead status after a turn; only ever moves forward."""
    candidate = current
    if current == "lost":
        candidate = "engaged"
    if turns >= 2:
        candidate = _max(candidate, "engaged")
    if score_now >= scoring.qualified_at and turns >= 2:
        candidate = _max(candidate, "qualified")
    if handed_off:
        candidate = _max(candidate, "handed_off")
    return candidate


def _max(a: str, b: str) -> str:
    return a if _RANK[a] >= _RANK[b] else b
