"""Which campaign brought a conversation, campaign figures and conversations per day.

:func:`campaign_for` credits a new conversation: an ad click's referral (title, body, ad id,
URL, click id) is matched against the configured campaigns' ids, names and patterns; the
first message against the patterns. Matching is on normalised words (accents, case,
WhatsApp abbreviations, articles and prepositions do not matter), so "vi o anúncio sobre a
menopausa" matches the pattern "anuncio sobre menopausa".

A campaign's *period cost* is its monthly cost spread over calendar months in the clinic's
time zone and summed over the report's period: a whole month costs the monthly cost, 15 days
of a 30-day month half of it. Cost per lead and per scheduled patient divide the period cost.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clinicflow.metrics_history import ChatFacts
from clinicflow.model import Campaign, Catalog
from clinicflow.text import words

_MAX_DAYS = 400
ORIGIN_NAMES = {"organic": "Orgânico", "ad_referral": "Anúncio não cadastrado"}
# Words that do not tell one campaign from another.
# fmt: off
_FILLER = frozenset({
    "o", "a", "os", "as", "um", "uma", "uns", "umas", "de", "do", "da", "dos", "das", "no",
    "na", "nos", "nas", "em", "num", "numa", "sobre", "pelo", "pela", "pelos", "pelas", "por",
    "para", "com", "e", "ao", "aos",
})
_CHANNEL_WORDS = frozenset({
    "instagram", "insta", "ig", "facebook", "fb", "meta", "google", "ads", "ad", "anuncio",
    "anuncios", "whatsapp", "zap", "tiktok", "youtube", "campanha", "site",
})
# fmt: on
# Referral fields, in the names WAHA's engines and the WhatsApp Cloud API use.
_ID_FIELDS = ("id", "source_id", "sourceId", "clid", "ctwa", "ctwa_clid", "ctwaClid")
_URL_FIELDS = ("url", "source_url", "sourceUrl")
_TEXT_FIELDS = ("title", "headline", "body", "description")


def campaign_for(
    campaigns: Sequence[Campaign], referral: Mapping[str, Any] | None, text: str
) -> str:
    """The origin of a new conversation: a campaign id, ``ad_referral`` (an ad click that
    matches no campaign) or ``organic``.

    Args:
        campaigns: the clinic's campaigns.
        referral: the click-to-WhatsApp ad details of the first message, if any.
        text: the first message.
    """
    if referral:
        found = _by_referral(campaigns, referral)
        if found is not None:
            return found
    found = _by_patterns(campaigns, text)
    if found is not None:
        return found
    return "ad_referral" if referral else "organic"


def _by_referral(campaigns: Sequence[Campaign], referral: Mapping[str, Any]) -> str | None:
    def field(*names: str) -> list[str]:
        return [str(referral[n]) for n in names if isinstance(referral.get(n), str | int)]

    named = {v.strip().casefold() for v in field(*_ID_FIELDS, *_TEXT_FIELDS, *_URL_FIELDS)}
    for campaign in campaigns:  # the ad's id, title or URL is the campaign's id or name
        if campaign.id.casefold() in named or campaign.name.strip().casefold() in named:
            return campaign.id
    url_parts = {p for url in field(*_URL_FIELDS) for p in re.split(r"[^\w-]+", url.casefold())}
    for campaign in campaigns:  # ...?utm_campaign=ig_diu
        if campaign.id.casefold() in url_parts:
            return campaign.id
    ad_text = "\n".join(field(*_TEXT_FIELDS))
    found = _by_patterns(campaigns, ad_text)
    if found is not None:
        return found
    ad_words = set(_tokens(ad_text))
    best, best_score = None, 0.0
    for campaign in campaigns:  # the campaign's subject ("Instagram — DIU") in the ad's title
        topic = set(_tokens(campaign.name)) - _CHANNEL_WORDS - set(_tokens(campaign.channel))
        if topic:
            score = len(topic & ad_words) / len(topic)
            if score >= 0.5 and score > best_score:
                best, best_score = campaign.id, score
    return best


def _by_patterns(campaigns: Sequence[Campaign], text: str) -> str | None:
    tokens = _tokens(text)
    for campaign in campaigns:
        for pattern in campaign.patterns:
            wanted = _tokens(pattern)
            if wanted and _contains(tokens, wanted):
                return campaign.id
    return None


def _tokens(text: str) -> list[str]:
    return [w for w in words(text or "") if w not in _FILLER]


def _contains(tokens: list[str], wanted: list[str]) -> bool:
    size = len(wanted)
    return any(tokens[i : i + size] == wanted for i in range(len(tokens) - size + 1))


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
