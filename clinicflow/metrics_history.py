"""Reading the SQLite history into per-conversation facts for :mod:`clinicflow.metrics`.

Everything here is read-only. A conversation is one chat (``conversations`` row). The facts
of a conversation are rebuilt from its rows *as they stood at a reference instant* (``ref``:
the end of the report's period, or now), so a report over a past month does not change when
the same patients write again later:

- status at ``ref`` is replayed from the events (``conversation_started``/``reopened``/
  ``handed_back``/``opted_in`` → ``bot``, ``handoff_requested`` → ``waiting_human``,
  ``human_took_over`` → ``human``, ``closed`` → ``closed``);
- script and state at ``ref`` are those recorded on its last event up to ``ref`` (the engine
  stamps every event with the conversation's script and state after the turn).

Stored instants are ISO 8601 UTC strings with milliseconds (:func:`clinicflow.clock.iso`),
so they compare correctly as text.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from clinicflow.clock import iso
from clinicflow.storage import Store

#: A conversation in ``bot`` status whose patient has not written for this long "went quiet".
QUIET_AFTER = timedelta(hours=24)
#: The engine's pseudo-state while the patient chooses a procedure (the first menu).
ROUTING = "__routing__"
#: Outbound ``messages.kind`` written for what a person typed on the clinic's phone.
HUMAN_KIND = "human"
#: Outbound kinds that are not the bot's reply to the patient's message.
NOT_A_REPLY = (HUMAN_KIND, "follow_up")

_STATUS_AFTER = {
    "conversation_started": "bot",
    "reopened": "bot",
    "handed_back": "bot",
    "opted_in": "bot",
    "handoff_requested": "waiting_human",
    "human_took_over": "human",
    "closed": "closed",
}


def parse_at(text: str) -> datetime:
    """A stored instant as an aware UTC datetime."""
    when = datetime.fromisoformat(text)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass
class HandoffFact:
    """One hand-off (a ``handoffs`` row) and when a person first answered it."""

    at: datetime
    reason: str
    urgent: bool
    human_at: datetime | None = None


@dataclass
class ChatFacts:
    """What one conversation did up to the reference instant."""

    chat_id: str
    origin: str
    started_at: datetime
    patient_name: str = ""
    script_id: str | None = None
    state: str | None = None
    status: str = "bot"
    inbound: list[datetime] = field(default_factory=list)
    handoffs: list[HandoffFact] = field(default_factory=list)
    qualified: bool = False
    scheduled: bool = False
    took_over: bool = False
    staff_closed: bool = False
    human_messages: list[datetime] = field(default_factory=list)
    follow_ups: list[tuple[datetime, bool]] = field(default_factory=list)
    llm_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0

    @property
    def engaged(self) -> bool:
        """The patient answered at least once after the bot's first reply (≥ 2 messages)."""
        return len(self.inbound) >= 2

    @property
    def human(self) -> bool:
        """A person took part: a hand-off, a take-over, a typed message or a staff close."""
        return bool(self.handoffs or self.took_over or self.human_messages or self.staff_closed)

    def quiet(self, ref: datetime, quiet_after: timedelta = QUIET_AFTER) -> bool:
        """With the bot, not closed, and no patient message in the last ``quiet_after``."""
        last = self.inbound[-1] if self.inbound else self.started_at
        return self.status == "bot" and last <= ref - quiet_after


def _chunks(ids: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def _rows(store: Store, sql: str, ids: list[str], *params: Any) -> list[dict[str, Any]]:
    """Rows of ``sql`` (with ``{ids}`` for the chat id placeholders) over all ``ids``."""
    found: list[dict[str, Any]] = []
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        found += store.query(sql.format(ids=marks), [*chunk, *params])
    return found


def cohort(
    store: Store,
    *,
    since: datetime | None,
    until: datetime | None,
    ref: datetime,
) -> list[dict[str, Any]]:
    """``conversations`` rows started in ``[since, until)`` and not after ``ref``."""
    sql = "SELECT chat_id, origin, started_at, patient_name FROM conversations "
    sql += "WHERE started_at IS NOT NULL AND started_at <= ?"
    params: list[Any] = [iso(ref)]
    if since is not None:
        sql += " AND started_at >= ?"
        params.append(iso(since))
    if until is not None:
        sql += " AND started_at < ?"
        params.append(iso(until))
    return store.query(sql + " ORDER BY started_at, chat_id", params)


def load_facts(store: Store, rows: list[dict[str, Any]], ref: datetime) -> list[ChatFacts]:
    """The facts of the conversations in ``rows`` (from :func:`cohort`) as of ``ref``."""
    facts = {
        r["chat_id"]: ChatFacts(
            chat_id=r["chat_id"],
            origin=r["origin"] or "organic",
            started_at=parse_at(r["started_at"]),
            patient_name=r["patient_name"] or "",
        )
        for r in rows
    }
    ids = list(facts)
    cap = iso(ref)
    follow_ups: dict[str, list[datetime]] = defaultdict(list)
    for e in _rows(
        store,
        "SELECT chat_id, type, script_id, state, data, at FROM events "
        "WHERE chat_id IN ({ids}) AND at <= ? ORDER BY chat_id, id",
        ids,
        cap,
    ):
        chat = facts[e["chat_id"]]
        kind = e["type"]
        chat.script_id = e["script_id"] or None
        chat.state = e["state"] or None
        chat.status = _STATUS_AFTER.get(kind, chat.status)
        if kind == "human_took_over":
            chat.took_over = True
        elif kind == "scheduled":
            chat.scheduled = True
        elif kind == "follow_up_sent":
            follow_ups[chat.chat_id].append(parse_at(e["at"]))
        elif kind == "closed" and json.loads(e["data"] or "{}").get("reason") == "staff":
            chat.staff_closed = True
    for m in _rows(
        store,
        "SELECT chat_id, direction, kind, at FROM messages "
        "WHERE chat_id IN ({ids}) AND at <= ? ORDER BY chat_id, id",
        ids,
        cap,
    ):
        if m["direction"] == "in":
            facts[m["chat_id"]].inbound.append(parse_at(m["at"]))
        elif m["kind"] == HUMAN_KIND:
            facts[m["chat_id"]].human_messages.append(parse_at(m["at"]))
    for lead in _rows(
        store,
        "SELECT chat_id FROM leads WHERE chat_id IN ({ids}) AND qualified_at <= ?",
        ids,
        cap,
    ):
        facts[lead["chat_id"]].qualified = True
    for h in _rows(
        store,
        "SELECT chat_id, reason, urgent, at FROM handoffs "
        "WHERE chat_id IN ({ids}) AND at <= ? ORDER BY chat_id, id",
        ids,
        cap,
    ):
        facts[h["chat_id"]].handoffs.append(
            HandoffFact(parse_at(h["at"]), h["reason"] or "", bool(h["urgent"]))
        )
    takeovers = _takeover_times(store, ids, cap)
    for chat in facts.values():
        chat.follow_ups = _answered(follow_ups[chat.chat_id], chat.inbound)
        human = sorted(chat.human_messages + takeovers.get(chat.chat_id, []))
        for handoff in chat.handoffs:
            handoff.human_at = next((t for t in human if t >= handoff.at), None)
    for u in _rows(
        store,
        "SELECT chat_id, COUNT(*) AS calls, COALESCE(SUM(tokens_in), 0) AS tin, "
        "COALESCE(SUM(tokens_out), 0) AS tout FROM understanding "
        "WHERE chat_id IN ({ids}) AND source = 'llm' AND at <= ? GROUP BY chat_id",
        ids,
        cap,
    ):
        chat = facts[u["chat_id"]]
        chat.llm_calls, chat.tokens_in, chat.tokens_out = u["calls"], u["tin"], u["tout"]
    return list(facts.values())


def _takeover_times(store: Store, ids: list[str], cap: str) -> dict[str, list[datetime]]:
    found: dict[str, list[datetime]] = defaultdict(list)
    for e in _rows(
        store,
        "SELECT chat_id, at FROM events WHERE chat_id IN ({ids}) "
        "AND type = 'human_took_over' AND at <= ?",
        ids,
        cap,
    ):
        found[e["chat_id"]].append(parse_at(e["at"]))
    return found


def _answered(sent: list[datetime], inbound: list[datetime]) -> list[tuple[datetime, bool]]:
    """Each follow-up with whether the patient wrote after it and before the next one."""
    result = []
    for index, at in enumerate(sent):
        following = sent[index + 1] if index + 1 < len(sent) else None
        answered = any(at < t and (following is None or t < following) for t in inbound)
        result.append((at, answered))
    return result


# -- response times ----------------------------------------------------------------------


def _has_table(store: Store, name: str) -> bool:
    rows = store.query("SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (name,))
    return bool(rows)


def bot_response_seconds(store: Store, ids: list[str], ref: datetime) -> tuple[str, list[float]]:
    """Seconds the bot took to answer each answered patient turn, and where they came from.

    ``"outbox"`` (the runner's tables exist): from the first ``inbox.received_at`` of an
    inbound batch to the first ``outbox.sent_at`` of its replies (kinds ``reply`` and
    ``media_ack``), i.e. what the patient waited, typing pause and WAHA included.

    ``"history"`` (no outbox, e.g. the engine used as a library): the engine stamps a turn's
    inbound and outbound ``messages`` rows with the same instant, so the figure is the gap
    between them (0 today) plus the milliseconds of the LLM calls recorded in that turn
    (``understanding`` rows of the chat at that instant). A lower bound: local understanding
    and sending are not recorded there.
    """
    cap = iso(ref)
    if _has_table(store, "outbox") and _has_table(store, "inbox"):
        rows = _rows(
            store,
            "SELECT o.chat_id, MIN(o.sent_at) AS sent, (SELECT MIN(i.received_at) FROM inbox i "
            "WHERE i.batch_id = o.batch_id AND i.chat_id = o.chat_id) AS received "
            "FROM outbox o WHERE o.chat_id IN ({ids}) AND o.status = 'sent' "
            "AND o.kind IN ('reply', 'media_ack') AND o.batch_id IS NOT NULL "
            "AND o.sent_at IS NOT NULL GROUP BY o.chat_id, o.batch_id",
            ids,
        )
        limit = ref.timestamp()
        return "outbox", [
            max(0.0, r["sent"] - r["received"])
            for r in rows
            if r["received"] is not None and r["received"] <= limit
        ]
    kinds = ",".join(f"'{k}'" for k in NOT_A_REPLY)
    rows = _rows(
        store,
        "SELECT i.chat_id, i.at, (SELECT MIN(o.at) FROM messages o WHERE o.chat_id = i.chat_id "
        f"AND o.direction = 'out' AND o.at = i.at AND o.id > i.id AND o.kind NOT IN ({kinds})) "
        "AS replied, (SELECT COALESCE(SUM(u.ms), 0) FROM understanding u "
        "WHERE u.chat_id = i.chat_id AND u.at = i.at AND u.source = 'llm') AS llm_ms "
        "FROM messages i WHERE i.chat_id IN ({ids}) AND i.direction = 'in' AND i.at <= ?",
        ids,
        cap,
    )
    return "history", [
        (parse_at(r["replied"]) - parse_at(r["at"])).total_seconds() + r["llm_ms"] / 1000.0
        for r in rows
        if r["replied"] is not None
    ]


# -- the diagram overlay and the hand-off queue ------------------------------------------


def transition_counts(
    store: Store,
    script_id: str,
    *,
    now: datetime | None = None,
    quiet_after: timedelta = QUIET_AFTER,
) -> tuple[dict[tuple[str, str], int], dict[str, int]]:
    """How many times each transition of a script was taken, and where patients stopped.

    Args:
        store: the history.
        script_id: the script whose diagram is annotated.
        now: the reference instant for "quiet" (default: the system clock).
        quiet_after: silence after which a conversation with the bot counts as stopped.

    Returns:
        ``counts[(from_state, to_state)]``: ``state_changed`` events inside the script (the
        entry into its start state is not a transition); ``stops[state]``: conversations whose
        latest script is this one and that went quiet (see :meth:`ChatFacts.quiet`) there.
    """
    ref = now or datetime.now(UTC)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    entered: dict[str, str] = {}  # chat → instant of the turn that entered a script
    for e in store.query(
        "SELECT chat_id, type, script_id, data, at FROM events WHERE type IN "
        "('script_entered', 'state_changed') AND at <= ? ORDER BY id",
        (iso(ref),),
    ):
        if e["type"] == "script_entered":
            entered[e["chat_id"]] = e["at"]
            continue
        if entered.pop(e["chat_id"], None) == e["at"]:
            continue  # the entry into the start state, drawn as [*] → start
        data = json.loads(e["data"] or "{}")
        if e["script_id"] == script_id and data.get("from") and data.get("to"):
            counts[(str(data["from"]), str(data["to"]))] += 1
    rows = store.query(
        "SELECT chat_id, origin, started_at, patient_name FROM conversations "
        "WHERE script_id = ? AND started_at <= ?",
        (script_id, iso(ref)),
    )
    stops: dict[str, int] = defaultdict(int)
    for chat in load_facts(store, rows, ref):
        if chat.script_id == script_id and chat.state and chat.quiet(ref, quiet_after):
            stops[chat.state] += 1
    return dict(counts), dict(stops)


@dataclass(frozen=True)
class QueueItem:
    """An open hand-off waiting for the clinic."""

    handoff_id: int
    chat_id: str
    patient_name: str
    reason: str
    urgent: bool
    at: datetime
    age_s: float
    script_id: str | None
    state: str | None
    status: str  # the conversation's status: waiting_human, or human once a person answered

    def as_dict(self) -> dict[str, Any]:
        """JSON-plain fields."""
        values = {k: getattr(self, k) for k in self.__dataclass_fields__}
        values["at"] = iso(self.at)
        values["age_s"] = round(self.age_s, 1)
        return values


def handoff_queue(store: Store, *, now: datetime | None = None) -> list[QueueItem]:
    """Open hand-offs, urgent first, then oldest first; ``age_s`` is measured at ``now``."""
    ref = now or datetime.now(UTC)
    rows = store.query(
        "SELECT h.id, h.chat_id, h.reason, h.urgent, h.at, h.script_id, h.state, "
        "COALESCE(c.patient_name, '') AS patient_name, COALESCE(c.status, '') AS status "
        "FROM handoffs h "
        "LEFT JOIN conversations c ON c.chat_id = h.chat_id WHERE h.status = 'open' "
        "ORDER BY h.urgent DESC, h.at, h.id"
    )
    return [
        QueueItem(
            handoff_id=int(r["id"]),
            chat_id=r["chat_id"],
            patient_name=r["patient_name"],
            reason=r["reason"] or "",
            urgent=bool(r["urgent"]),
            at=parse_at(r["at"]),
            age_s=max(0.0, (ref - parse_at(r["at"])).total_seconds()),
            script_id=r["script_id"] or None,
            state=r["state"] or None,
            status=r["status"],
        )
        for r in rows
    ]
