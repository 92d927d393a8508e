"""Campaign figures and conversations per day for :mod:`clinicflow.metrics`.

A campaign's *period cost* is its monthly cost spread over calendar months in the clinic's
time zone and summed over the report's period: a whole month costs the monthly cost, 15 days
of a 30-day month half of it. Cost per lead and per scheduled patient divide the period cost.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from clinicflow.metrics_history import ChatFacts
from clinicflow.model import Catalog

_MAX_DAYS = 400
ORIGIN_NAMES = {"organic": "Orgânico", "ad_referral": "Anúncio não cadastrado"}


@dataclass(frozen=True)
class CampaignFigures:
    """One origin: a configured campaign, ``organic`` or an unknown ad referral."""

    id: str
    name: str
    channel: str
    monthly_cost: float | None
    period_cost: float | None
    leads: int
    handed_off: int
    scheduled: int
    cost_per_lead: float | None
    cost_per_scheduled: float | None


def prorated_cost(monthly: float, start: datetime, end: datetime, zone: ZoneInfo) -> float:
    """``monthly`` spread over calendar months (in ``zone``) and summed over ``[start, end)``."""
    total = 0.0
    local = start.astimezone(zone)
    month = datetime(local.year, local.month, 1, tzinfo=zone)
    while month < end:
        following = datetime(month.year + month.month // 12, month.month % 12 + 1, 1, tzinfo=zone)
        overlap = (min(end, following) - max(start, month)).total_seconds()
        if overlap > 0:
            total += monthly * overlap / (following - month).total_seconds()
        month = following
    return round(total, 2)


def campaign_figures(
    chats: list[ChatFacts],
    catalog: Catalog,
    only: str | None,
    start: datetime,
    end: datetime,
    zone: ZoneInfo,
) -> tuple[CampaignFigures, ...]:
    """One row per configured campaign, then per other origin seen (``only``: just that one).

    Args:
        chats: the report's conversations.
        catalog: campaigns with names, channels and monthly costs.
        only: keep only this origin (the report's campaign filter).
        start: the period's first instant (for the cost).
        end: the period's end (for the cost).
        zone: the clinic's time zone (calendar months).
    """
    configured = {c.id: c for c in catalog.clinic.campaigns}
    origins = list(configured) + sorted({c.origin for c in chats} - set(configured))
    result = []
    for origin in origins:
        if only is not None and origin != only:
            continue
        mine = [c for c in chats if c.origin == origin]
        found = configured.get(origin)
        monthly = found.monthly_cost if found and found.monthly_cost else None
        cost = prorated_cost(monthly, start, end, zone) if monthly else None
        scheduled = sum(1 for c in mine if c.scheduled)
        result.append(
            CampaignFigures(
                id=origin,
                name=found.name if found else ORIGIN_NAMES.get(origin, origin),
                channel=found.channel if found else "",
                monthly_cost=monthly,
                period_cost=cost,
                leads=len(mine),
                handed_off=sum(1 for c in mine if c.handoffs or c.scheduled),
                scheduled=scheduled,
                cost_per_lead=round(cost / len(mine), 2) if cost is not None and mine else None,
                cost_per_scheduled=round(cost / scheduled, 2)
                if cost is not None and scheduled
                else None,
            )
        )
    return tuple(result)


def per_day(
    chats: list[ChatFacts], start: datetime, end: datetime, zone: ZoneInfo
) -> tuple[tuple[str, int], ...]:
    """Conversations started on each clinic-local day of ``[start, end)``, zeros included.

    At most the last 400 days are listed.
    """
    counts = Counter(c.started_at.astimezone(zone).date() for c in chats)
    last = (end - timedelta(microseconds=1)).astimezone(zone).date()
    first = max(start.astimezone(zone).date(), last - timedelta(days=_MAX_DAYS - 1))
    days = []
    day = first
    while day <= last:
        days.append((day.isoformat(), counts.get(day, 0)))
        day += timedelta(days=1)
    return tuple(days)
