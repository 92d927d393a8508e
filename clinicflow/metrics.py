"""Reports over the SQLite history: the funnel, drop-off, hand-offs, response times, campaigns.

:func:`report` answers "how did the front desk do" for a period, optionally for one script
and/or one campaign (origin). Definitions, all measured on the history as it stood at the
reference instant ``ref`` (the end of the period, or now when the period is open):

- **Conversations** (the cohort): chats whose first message (``conversations.started_at``)
  falls in ``[since, until)``. Everything below counts what those conversations did up to
  ``ref``. ``script`` keeps the conversations whose latest script (at ``ref``) is that one;
  ``campaign`` keeps those whose origin is that campaign id (or ``organic``/``ad_referral``).
- **Funnel**, cumulative (a conversation at a later step counts at every earlier one):
  *started*; *engaged*: ≥ 2 patient messages (she answered after the bot's first reply);
  *qualified*: the lead score crossed the threshold (``leads.qualified_at``); *handed off*:
  at least one ``handoffs`` row; *scheduled*: a ``scheduled`` event (staff booked her).
  ``conversion`` = count / previous step's count; ``drop_off`` = previous − count.
- **Drop-off by state**: conversations that *went quiet* (status ``bot`` at ``ref``, not
  closed, no patient message during the last ``quiet_after``, 24 h by default), counted by
  their script and state at ``ref``; ``__routing__`` is the first menu.
- **Containment**: *contained* = finished without a person (closed by the bot, i.e. end of
  script or opt-out, or quiet) and no person ever took part (no hand-off, take-over, typed
  message or staff close); *with_human* = a person took part; *in_progress* = the rest.
  ``rate`` = contained / (contained + with_human).
- **Hand-offs**: ``handoffs`` rows by reason and urgency.
- **Time to hand-off**: first patient message → first hand-off, per conversation.
- **Human response**: per hand-off, its time → the first thing a person did in the chat
  after it: an outbound ``messages`` row of kind ``human`` or a ``human_took_over`` event.
  Hand-offs nobody answered yet are left out (they are in the queue). **Per person**
  (``human_response_by_staff``) and **appointments** by day: see
  :mod:`clinicflow.metrics_staff`.
- **Bot response**: see :func:`clinicflow.metrics_history.bot_response_seconds`.
- Durations are given as the median (mean of the two middle values when even) and the p90
  by nearest rank (the ⌈0.9·n⌉-th smallest), in seconds.
- **Follow-ups**: ``follow_up_sent`` events; *answered* = the patient wrote after it and
  before the next follow-up of the chat.
- **LLM**: ``understanding`` rows with ``source = 'llm'`` (calls and tokens), totals and per
  conversation of the cohort.
- **Campaigns**: per origin, *leads* = conversations of the cohort from it; *period cost* =
  the monthly cost pro-rated by calendar month in the clinic's time zone over the period
  (``since`` or the first conversation's day → ``until`` or now): a whole month costs the
  monthly cost, 15 days of a 30-day month half of it. Cost per lead and per scheduled patient
  divide the period cost (None without leads or bookings).
- **Conversations per day**: by the clinic-local day of the first message, every day of
  the period with zeros (at most the last 400 days).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from clinicflow.clock import iso
from clinicflow.metrics_campaigns import CampaignFigures, campaign_figures, per_day
from clinicflow.metrics_history import (
    QUIET_AFTER,
    ChatFacts,
    QueueItem,
    bot_response_seconds,
    cohort,
    handoff_queue,
    load_facts,
    transition_counts,
)
from clinicflow.metrics_staff import StaffResponse, appointments_by_day, staff_responses
from clinicflow.model import Catalog
from clinicflow.storage import Store

__all__ = [
    "FUNNEL",
    "QUIET_AFTER",
    "CampaignFigures",
    "Containment",
    "Duration",
    "FollowUps",
    "FunnelStep",
    "Handoffs",
    "LLMUsage",
    "QueueItem",
    "Report",
    "StaffResponse",
    "StateDropOff",
    "handoff_queue",
    "parse_day",
    "percentile",
    "report",
    "transition_counts",
]

#: Funnel steps in order, with their pt-BR labels.
FUNNEL = (
    ("started", "Iniciaram"),
    ("engaged", "Responderam"),
    ("qualified", "Qualificadas"),
    ("handed_off", "Com a secretária"),
    ("scheduled", "Agendadas"),
)


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def percentile(values: list[float], share: float) -> float | None:
    """Nearest-rank percentile: the ⌈share·n⌉-th smallest value (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass(frozen=True)
class Duration:
    """A distribution of durations in seconds."""

    count: int
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, seconds: list[float]) -> Duration:
        """Median and nearest-rank p90 of ``seconds``, rounded to 0.1 s."""
        if not seconds:
            return cls(0, None, None)
        p90 = percentile(seconds, 0.9)
        assert p90 is not None
        return cls(len(seconds), round(statistics.median(seconds), 1), round(p90, 1))


@dataclass(frozen=True)
class FunnelStep:
    """One step of the funnel."""

    key: str
    label: str
    count: int
    conversion: float | None  # count / previous step (None for the first)
    drop_off: int  # previous step − count
    of_started: float | None  # count / started


@dataclass(frozen=True)
class StateDropOff:
    """Quiet conversations stopped at one state."""

    script: str | None
    state: str | None
    count: int


@dataclass(frozen=True)
class Containment:
    """Conversations finished without a person versus with one."""

    contained: int
    with_human: int
    in_progress: int
    rate: float | None


@dataclass(frozen=True)
class Handoffs:
    """Hand-offs (``handoffs`` rows) of the cohort."""

    total: int
    conversations: int
    urgent: int
    not_urgent: int
    by_reason: dict[str, int]


@dataclass(frozen=True)
class FollowUps:
    """Follow-ups sent and answered."""

    sent: int
    answered: int
    answered_rate: float | None


@dataclass(frozen=True)
class LLMUsage:
    """Language-model calls of the cohort."""

    calls: int
    tokens_in: int
    tokens_out: int
    calls_per_conversation: float | None
    tokens_per_conversation: float | None


@dataclass(frozen=True)
class Report:
    """Every figure of one period; :meth:`as_dict` is what ``clinicflow report --json`` prints."""

    since: datetime | None
    until: datetime | None
    start: datetime
    end: datetime
    timezone: str
    quiet_after_s: float
    script: str | None
    campaign: str | None
    conversations: int
    funnel: tuple[FunnelStep, ...]
    drop_off_by_state: tuple[StateDropOff, ...]
    containment: Containment
    handoffs: Handoffs
    time_to_handoff: Duration
    bot_response_source: str
    bot_response: Duration
    human_response: Duration
    follow_ups: FollowUps
    llm: LLMUsage
    campaigns: tuple[CampaignFigures, ...]
    per_day: tuple[tuple[str, int], ...]
    erased: int = 0  # conversations erased on request in the period (LGPD), anonymous
    staff_response: tuple[StaffResponse, ...] = ()
    appointments: tuple[tuple[str, int], ...] = ()  # booked appointments by local day

    def step(self, key: str) -> FunnelStep:
        """The funnel step ``key``."""
        return next(step for step in self.funnel if step.key == key)

    def as_dict(self) -> dict[str, Any]:
        """JSON-plain: instants as ISO strings, funnel and campaigns keyed by their id."""
        return {
            "period": {
                "since": iso(self.since) if self.since else None,
                "until": iso(self.until) if self.until else None,
                "start": iso(self.start),
                "end": iso(self.end),
                "timezone": self.timezone,
                "quiet_after_s": self.quiet_after_s,
            },
            "filters": {"script": self.script, "campaign": self.campaign},
            "conversations": self.conversations,
            "funnel": {s.key: _plain(s, skip=("key",)) for s in self.funnel},
            "drop_off_by_state": [asdict(d) for d in self.drop_off_by_state],
            "containment": asdict(self.containment),
            "handoffs": asdict(self.handoffs),
            "time_to_handoff": asdict(self.time_to_handoff),
            "bot_response": {"source": self.bot_response_source, **asdict(self.bot_response)},
            "human_response": asdict(self.human_response),
            "human_response_by_staff": [asdict(s) for s in self.staff_response],
            "follow_ups": asdict(self.follow_ups),
            "llm": asdict(self.llm),
            "campaigns": {c.id: _plain(c, skip=("id",)) for c in self.campaigns},
            "per_day": dict(self.per_day),
            "erased_on_request": self.erased,
            "appointments": {
                "count": sum(n for _, n in self.appointments),
                "by_day": dict(self.appointments),
            },
        }


def _plain(item: Any, *, skip: tuple[str, ...]) -> dict[str, Any]:
    return {f.name: getattr(item, f.name) for f in fields(item) if f.name not in skip}


def parse_day(text: str, tz: str, *, end: bool = False) -> datetime:
    """A ``--since``/``--until`` value as an aware instant.

    ``YYYY-MM-DD`` is midnight of that day in the clinic's time zone ``tz``; with ``end`` it is
    the next midnight, so ``--until 2026-03-31`` includes the 31st. A full ISO datetime is taken
    as is (in ``tz`` when it has no offset).
    """
    zone = ZoneInfo(tz)
    text = text.strip()
    if len(text) == 10:
        day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
        return datetime.combine(day, time(), zone).astimezone(UTC)
    when = datetime.fromisoformat(text)
    return (when if when.tzinfo else when.replace(tzinfo=zone)).astimezone(UTC)


def report(
    store: Store,
    *,
    since: datetime | None,
    until: datetime | None,
    script: str | None,
    campaign: str | None,
    catalog: Catalog,
    now: datetime | None = None,
    quiet_after: timedelta = QUIET_AFTER,
) -> Report:
    """Every figure of the period (definitions in this module's docstring).

    Args:
        store: the history.
        since: first instant of the period (None: from the beginning).
        until: end of the period, exclusive (None: up to now).
        script: only conversations whose latest script is this one.
        campaign: only conversations from this origin (campaign id, ``organic``...).
        catalog: the catalog, for campaign names and costs and the clinic's time zone.
        now: the current instant (default: the system clock); ``ref`` is ``min(until, now)``.
        quiet_after: silence after which a conversation with the bot counts as quiet.
    """
    current = now or datetime.now(UTC)
    ref = min(until, current) if until is not None else current
    rows = cohort(store, since=since, until=until, ref=ref)
    if campaign is not None:
        rows = [r for r in rows if (r["origin"] or "organic") == campaign]
    chats = load_facts(store, rows, ref)
    if script is not None:
        chats = [c for c in chats if c.script_id == script]
    tz = catalog.clinic.hours.timezone
    zone = ZoneInfo(tz)
    start = since or (
        datetime.combine(min(c.started_at for c in chats).astimezone(zone).date(), time(), zone)
        if chats
        else ref
    )
    source, bot_seconds = bot_response_seconds(store, [c.chat_id for c in chats], ref)
    handoffs = [h for c in chats for h in c.handoffs]
    follow_ups = [answered for c in chats for _, answered in c.follow_ups]
    return Report(
        since=since,
        until=until,
        start=start.astimezone(UTC),
        end=ref,
        timezone=tz,
        quiet_after_s=quiet_after.total_seconds(),
        script=script,
        campaign=campaign,
        conversations=len(chats),
        funnel=_funnel(chats),
        drop_off_by_state=_drop_off(chats, ref, quiet_after),
        containment=_containment(chats, ref, quiet_after),
        handoffs=Handoffs(
            total=len(handoffs),
            conversations=sum(1 for c in chats if c.handoffs),
            urgent=sum(1 for h in handoffs if h.urgent),
            not_urgent=sum(1 for h in handoffs if not h.urgent),
            by_reason=dict(sorted(Counter(h.reason for h in handoffs).items())),
        ),
        time_to_handoff=Duration.of(
            [(c.handoffs[0].at - c.started_at).total_seconds() for c in chats if c.handoffs]
        ),
        bot_response_source=source,
        bot_response=Duration.of(bot_seconds),
        human_response=Duration.of(
            [(h.human_at - h.at).total_seconds() for h in handoffs if h.human_at is not None]
        ),
        follow_ups=FollowUps(
            len(follow_ups), sum(follow_ups), _ratio(sum(follow_ups), len(follow_ups))
        ),
        llm=_llm(chats),
        campaigns=campaign_figures(chats, catalog, campaign, start, ref, zone),
        per_day=per_day(chats, start, ref, zone),
        erased=_erased(store, since, ref),
        staff_response=staff_responses(store, chats, ref),
        appointments=appointments_by_day(store, [c.chat_id for c in chats], ref, zone),
    )


def _erased(store: Store, since: datetime | None, until: datetime) -> int:
    """Conversations erased on request (``clinicflow patient erase``) in the period."""
    found = store.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'erasures'")
    if not found:
        return 0
    low = iso(since) if since is not None else ""
    row = store.query(
        "SELECT COALESCE(SUM(conversations), 0) AS n FROM erasures WHERE at >= ? AND at < ?",
        (low, iso(until)),
    )
    return int(row[0]["n"])


def _funnel(chats: list[ChatFacts]) -> tuple[FunnelStep, ...]:
    reached = {
        "started": lambda c: True,
        "engaged": lambda c: c.engaged,
        "qualified": lambda c: c.qualified,
        "handed_off": lambda c: bool(c.handoffs),
        "scheduled": lambda c: c.scheduled,
    }
    keys = [key for key, _ in FUNNEL]
    counts = [
        sum(1 for c in chats if any(reached[k](c) for k in keys[index:]))
        for index in range(len(keys))
    ]
    steps = []
    for index, (key, label) in enumerate(FUNNEL):
        previous = counts[index - 1] if index else None
        steps.append(
            FunnelStep(
                key=key,
                label=label,
                count=counts[index],
                conversion=_ratio(counts[index], previous) if previous is not None else None,
                drop_off=(previous - counts[index]) if previous is not None else 0,
                of_started=_ratio(counts[index], counts[0]),
            )
        )
    return tuple(steps)


def _drop_off(
    chats: list[ChatFacts], ref: datetime, quiet_after: timedelta
) -> tuple[StateDropOff, ...]:
    where = Counter((c.script_id, c.state) for c in chats if c.quiet(ref, quiet_after))
    ordered = sorted(where.items(), key=lambda kv: (-kv[1], kv[0][0] or "", kv[0][1] or ""))
    return tuple(StateDropOff(script, state, count) for (script, state), count in ordered)


def _containment(chats: list[ChatFacts], ref: datetime, quiet_after: timedelta) -> Containment:
    with_human = sum(1 for c in chats if c.human)
    contained = sum(
        1 for c in chats if not c.human and (c.status == "closed" or c.quiet(ref, quiet_after))
    )
    return Containment(
        contained=contained,
        with_human=with_human,
        in_progress=len(chats) - contained - with_human,
        rate=_ratio(contained, contained + with_human),
    )


def _llm(chats: list[ChatFacts]) -> LLMUsage:
    calls = sum(c.llm_calls for c in chats)
    tokens_in = sum(c.tokens_in for c in chats)
    tokens_out = sum(c.tokens_out for c in chats)
    return LLMUsage(
        calls=calls,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        calls_per_conversation=_ratio(calls, len(chats)),
        tokens_per_conversation=_ratio(tokens_in + tokens_out, len(chats)),
    )
