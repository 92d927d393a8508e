# ruff: noqa: F811 - pytest fixtures are imported from metrics_demo by name
"""Every figure of ``clinicflow.metrics.report`` against the ledger of what the demo played.

The expectations below are computed from the ledger (what the engine returned and the clock
said while ``examples/fill_demo.py`` played), never from the database.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from metrics_demo import START, TZ, demo  # noqa: F401 - fixture

from clinicflow.clock import iso
from clinicflow.inbox import ensure_schema
from clinicflow.loader import load_catalog
from clinicflow.metrics import handoff_queue, percentile, report, transition_counts
from clinicflow.outbox import Outbox
from clinicflow.storage import Row, Store

DAY = timedelta(days=1)
CATALOG = load_catalog(None)


def _duration(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "median_s": None, "p90_s": None}
    ordered = sorted(values)
    p90 = ordered[math.ceil(len(ordered) * 0.9) - 1]
    return {
        "count": len(values),
        "median_s": round(statistics.median(values), 1),
        "p90_s": round(p90, 1),
    }


def _share(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def expected(
    ledger: Any,
    *,
    now: datetime,
    since: datetime | None = None,
    until: datetime | None = None,
    script: str | None = None,
    campaign: str | None = None,
    period_cost_share: float,
) -> dict[str, Any]:
    """The report's ``as_dict()`` (without ``period``/``filters``), from the ledger."""
    ref = min(until, now) if until else now
    chats = [
        c
        for c in ledger.chats
        if c.started_at <= ref
        and (since is None or c.started_at >= since)
        and (until is None or c.started_at < until)
        and (campaign is None or c.origin == campaign)
        and (script is None or c.script_id == script)
    ]
    for c in chats:  # the ledger holds final values: the chosen periods must contain them
        assert c.last_at <= ref, c.chat_id

    def quiet(c: Any) -> bool:
        return c.status == "bot" and c.inbound[-1] <= ref - DAY

    def human(c: Any) -> bool:
        return bool(c.handoffs or c.took_over or c.human_at or c.staff_closed)

    reached = {
        "started": lambda c: True,
        "engaged": lambda c: len(c.inbound) >= 2,
        "qualified": lambda c: "qualified" in c.lead_statuses,
        "handed_off": lambda c: bool(c.handoffs),
        "scheduled": lambda c: c.scheduled,
    }
    order = list(reached)
    counts = {
        k: sum(1 for c in chats if any(reached[x](c) for x in order[i:]))
        for i, k in enumerate(order)
    }
    labels = ["Iniciaram", "Responderam", "Qualificadas", "Com a secretária", "Agendadas"]
    funnel = {}
    for i, key in enumerate(order):
        before = counts[order[i - 1]] if i else None
        funnel[key] = {
            "label": labels[i],
            "count": counts[key],
            "conversion": None if before is None else _share(counts[key], before),
            "drop_off": 0 if before is None else before - counts[key],
            "of_started": _share(counts[key], counts["started"]),
        }
    handoffs = [h for c in chats for h in c.handoffs]
    human_waits = []
    for c in chats:
        for at, _, _ in c.handoffs:
            later = [t for t in sorted(c.human_at) if t >= at]
            if later:
                human_waits.append((later[0] - at).total_seconds())
    bot_waits = [
        sum(ms for at, _, _, ms in c.llm if at == t) / 1000 for c in chats for t in c.replied
    ]
    answered = []
    for c in chats:
        for i, sent in enumerate(c.follow_ups):
            nxt = c.follow_ups[i + 1] if i + 1 < len(c.follow_ups) else None
            answered.append(any(sent < t and (nxt is None or t < nxt) for t in c.inbound))
    calls = sum(len(c.llm) for c in chats)
    tokens_in = sum(x[1] for c in chats for x in c.llm)
    tokens_out = sum(x[2] for c in chats for x in c.llm)
    contained = sum(1 for c in chats if not human(c) and (c.status == "closed" or quiet(c)))
    with_human = sum(1 for c in chats if human(c))
    campaigns = {}
    configured = {c.id: c for c in CATALOG.clinic.campaigns}
    for origin in list(configured) + sorted({c.origin for c in chats} - set(configured)):
        if campaign is not None and origin != campaign:
            continue
        mine = [c for c in chats if c.origin == origin]
        booked = sum(1 for c in mine if c.scheduled)
        found = configured.get(origin)
        cost = round(found.monthly_cost * period_cost_share, 2) if found else None
        campaigns[origin] = {
            "name": found.name if found else {"organic": "Orgânico"}[origin],
            "channel": found.channel if found else "",
            "monthly_cost": found.monthly_cost if found else None,
            "period_cost": cost,
            "leads": len(mine),
            "handed_off": sum(1 for c in mine if c.handoffs or c.scheduled),
            "scheduled": booked,
            "cost_per_lead": round(cost / len(mine), 2) if cost is not None and mine else None,
            "cost_per_scheduled": round(cost / booked, 2) if cost is not None and booked else None,
        }
    first_day = (since or START).astimezone(TZ).date()
    last_day = (ref - timedelta(microseconds=1)).astimezone(TZ).date()
    per_day_counts = Counter(c.started_at.astimezone(TZ).date() for c in chats)
    per_day = {}
    day = first_day
    while day <= last_day:
        per_day[day.isoformat()] = per_day_counts.get(day, 0)
        day += DAY
    return {
        "conversations": len(chats),
        "funnel": funnel,
        "drop_off_by_state": Counter((c.script_id, c.state) for c in chats if quiet(c)),
        "containment": {
            "contained": contained,
            "with_human": with_human,
            "in_progress": len(chats) - contained - with_human,
            "rate": _share(contained, contained + with_human),
        },
        "handoffs": {
            "total": len(handoffs),
            "conversations": sum(1 for c in chats if c.handoffs),
            "urgent": sum(1 for h in handoffs if h[2]),
            "not_urgent": sum(1 for h in handoffs if not h[2]),
            "by_reason": dict(sorted(Counter(h[1] for h in handoffs).items())),
        },
        "time_to_handoff": _duration(
            [(c.handoffs[0][0] - c.started_at).total_seconds() for c in chats if c.handoffs]
        ),
        "bot_response": {"source": "history", **_duration(bot_waits)},
        "human_response": _duration(human_waits),
        "follow_ups": {
            "sent": len(answered),
            "answered": sum(answered),
            "answered_rate": _share(sum(answered), len(answered)),
        },
        "llm": {
            "calls": calls,
            "tokens_in": tokens_in,
            "tokens_out": tokens_out,
            "calls_per_conversation": _share(calls, len(chats)),
            "tokens_per_conversation": _share(tokens_in + tokens_out, len(chats)),
        },
        "campaigns": campaigns,
        "per_day": per_day,
    }


def _check(got: dict[str, Any], want: dict[str, Any]) -> None:
    rows = got.pop("drop_off_by_state")
    assert Counter({(r["script"], r["state"]): r["count"] for r in rows}) == want.pop(
        "drop_off_by_state"
    )
    assert [r["count"] for r in rows] == sorted((r["count"] for r in rows), reverse=True)
    for key, value in want.items():
        assert got[key] == value, key


def _run(data: Path, **kwargs: Any) -> dict[str, Any]:
    store = Store(data)
    try:
        return report(store, catalog=CATALOG, **kwargs).as_dict()
    finally:
        store.close()


def test_the_demo_is_a_realistic_mix(demo: tuple[Path, Any]) -> None:
    _, ledger = demo
    chats = ledger.chats
    assert len({c.script_id for c in chats if c.script_id}) >= 5
    assert {c.origin for c in chats} >= {"organic", "ig_diu", "google_gineco", "ig_menopausa"}
    reasons = {h[1] for c in chats for h in c.handoffs}
    assert {"schedule", "human_request", "complaint", "urgent"} <= reasons
    assert any(h[2] for c in chats for h in c.handoffs)
    assert sum(c.scheduled for c in chats) >= 5 and any(c.follow_ups for c in chats)
    assert any(c.status == "bot" and c.handoffs for c in chats)  # handed back


def test_whole_history(demo: tuple[Path, Any]) -> None:
    data, ledger = demo
    now = ledger.now
    got = _run(data, since=None, until=None, script=None, campaign=None, now=now)
    share = (now - START).total_seconds() / (31 * 86400)  # all in March
    want = expected(ledger, now=now, period_cost_share=share)
    assert want["containment"]["in_progress"] > 0 and want["follow_ups"]["answered"] > 0
    assert want["human_response"]["count"] > 0 and want["llm"]["calls"] > 0
    assert want["bot_response"]["p90_s"] == 0.0  # history: LLM time only, in 4 of 200 turns
    assert got["period"]["start"] == iso(START) and got["period"]["end"] == iso(now)
    assert got["filters"] == {"script": None, "campaign": None}
    _check(got, want)


def test_whole_month_costs_the_monthly_cost(demo: tuple[Path, Any]) -> None:
    data, ledger = demo
    since, until = datetime(2026, 3, 1, tzinfo=TZ), datetime(2026, 4, 1, tzinfo=TZ)
    got = _run(data, since=since, until=until, script=None, campaign=None, now=datetime.now(UTC))
    want = expected(ledger, now=datetime.now(UTC), since=since, until=until, period_cost_share=1)
    assert want["containment"]["in_progress"] == 0  # a month later, everyone is done or quiet
    assert got["campaigns"]["ig_diu"]["period_cost"] == 1500
    _check(got, want)


@pytest.mark.parametrize(
    ("script", "campaign"), [("diu", None), (None, "ig_diu"), ("consulta_ginecologica", "organic")]
)
def test_filters_and_a_week(
    demo: tuple[Path, Any], script: str | None, campaign: str | None
) -> None:
    data, ledger = demo
    since, until = datetime(2026, 3, 9, tzinfo=TZ), datetime(2026, 3, 16, tzinfo=TZ)
    got = _run(data, since=since, until=until, script=script, campaign=campaign, now=ledger.now)
    want = expected(
        ledger, now=ledger.now, since=since, until=until, script=script, campaign=campaign,
        period_cost_share=7 / 31,
    )  # fmt: skip
    assert want["conversations"] > 0
    assert got["filters"] == {"script": script, "campaign": campaign}
    _check(got, want)


def test_transition_overlay(demo: tuple[Path, Any]) -> None:
    data, ledger = demo
    store = Store(data)
    try:
        counts, stops = transition_counts(store, "diu", now=ledger.now)
    finally:
        store.close()
    moves = Counter((a, b) for c in ledger.chats for s, a, b in c.moves if s == "diu")
    assert counts == dict(moves) and counts
    quiet = Counter(
        c.state
        for c in ledger.chats
        if c.script_id == "diu" and c.status == "bot" and c.inbound[-1] <= ledger.now - DAY
    )
    assert stops == dict(quiet) and stops


def test_handoff_queue(demo: tuple[Path, Any]) -> None:
    data, ledger = demo
    store = Store(data)
    try:
        queue = handoff_queue(store, now=ledger.now)
    finally:
        store.close()
    waiting = [c for c in ledger.chats if c.handoffs and c.status in ("waiting_human", "human")]
    assert sorted(q.chat_id for q in queue) == sorted(c.chat_id for c in waiting)
    assert queue[0].urgent
    assert [q.urgent for q in queue] == sorted((q.urgent for q in queue), reverse=True)
    for item in queue:
        chat = next(c for c in ledger.chats if c.chat_id == item.chat_id)
        assert item.at == chat.handoffs[-1][0]
        assert item.age_s == (ledger.now - chat.handoffs[-1][0]).total_seconds()
        assert item.status == chat.status


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 0.9) is None
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([float(x) for x in range(1, 11)], 0.9) == 9.0
    assert percentile([float(x) for x in range(1, 12)], 0.9) == 10.0


def test_bot_response_uses_the_outbox_when_the_runner_wrote_one(tmp_path: Path) -> None:
    store = Store(tmp_path)
    started = datetime(2026, 3, 2, 12, tzinfo=UTC)
    store.write(
        [
            Row("conversations", {"chat_id": c, "origin": "organic", "started_at": iso(started)})
            for c in ("a", "b")
        ]
    )
    ensure_schema(store.conn)
    Outbox(store.conn)
    base = started.timestamp()
    rows = [  # (chat, batch, received, sent, kind, status)
        ("a", "m1", base, base + 2.5, "reply", "sent"),
        ("a", "m1", base + 0.5, base + 4.0, "reply", "sent"),  # second message of the batch
        ("a", "m2", base + 60, base + 61.0, "media_ack", "sent"),
        ("b", "m3", base + 10, base + 18.0, "reply", "sent"),
        ("b", "m4", base + 20, None, "reply", "pending"),  # not sent yet: no figure
        ("b", "m5", base + 30, base + 31.0, "handoff_notice", "sent"),  # to the staff
    ]
    with store.conn:
        for chat, batch, received, sent, kind, status in rows:
            store.conn.execute(
                "INSERT INTO inbox (session, message_id, chat_id, received_at, batch_id, status) "
                "VALUES ('default', ?, ?, ?, ?, 'done')",
                (f"{batch}-{received}", chat, received, batch),
            )
            store.conn.execute(
                "INSERT INTO outbox (chat_id, text, kind, batch_id, status, created_at, sent_at) "
                "VALUES (?, 'oi', ?, ?, ?, ?, ?)",
                (chat, kind, batch, status, received, sent),
            )
    got = report(
        store, since=None, until=None, script=None, campaign=None, catalog=CATALOG,
        now=started + DAY,
    ).as_dict()["bot_response"]  # fmt: skip
    store.close()
    # m1: 2.5 s (first reply after the first message), m2: 1 s, m3: 8 s
    assert got == {"source": "outbox", "count": 3, "median_s": 2.5, "p90_s": 8.0}
