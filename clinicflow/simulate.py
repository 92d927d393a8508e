"""``clinicflow simulate``: YAML conversation tests, deterministic and offline.

A file holds ``conversations``, each a list of ``turns``: ``user`` (a patient message and what
to ``expect``), ``handback`` (the secretary returns the chat to the bot), ``takeover`` (a
person from the clinic writes in the chat) or ``wait`` (advance the simulated clock, e.g.
``wait: 25h``). ``expect: {brief: {period: manhã, when: semana que vem}}`` checks the fields of
the hand-off brief (text fields contain the words; a list: each item is in one of them).
Every conversation runs on its own chat id against a
:class:`~clinicflow.clock.ManualClock`, so results never depend on the real time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clinicflow.errors import SimulationError
from clinicflow.text import fold
from clinicflow.yamlsrc import YMap, YNode, YScalar, YSeq, parse

if TYPE_CHECKING:
    from clinicflow.clock import ManualClock
    from clinicflow.dialogue import Handoff
    from clinicflow.engine import Engine, TurnResult

EXPECT_KEYS = (
    "intent",
    "script",
    "state",
    "slots",
    "status",
    "reply_contains",
    "reply_not_contains",
    "no_reply",
    "handoff",
    "lead_status",
    "source",
    "brief",
)
TURN_KINDS = ("user", "handback", "takeover", "wait")


@dataclass(frozen=True)
class SimTurn:
    kind: str
    text: str = ""
    seconds: float = 0.0
    expect: Mapping[str, Any] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True)
class SimConversation:
    name: str
    turns: tuple[SimTurn, ...]
    file: str
    line: int
    chat_id: str | None = None
    at: datetime | None = None


@dataclass
class TurnRecord:
    """What one simulated turn did, and what did not match."""

    conversation: str
    file: str
    line: int
    kind: str
    user: str
    intent: str | None = None
    source: str = ""
    confidence: float = 0.0
    script: str | None = None
    state: str | None = None
    status: str = ""
    replies: list[str] = field(default_factory=list)
    ms: float = 0.0
    llm_calls: int = 0
    failures: list[str] = field(default_factory=list)
    transitions: list[tuple[str, str, str]] = field(default_factory=list)  # script, from, to

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversation": self.conversation,
            "file": self.file,
            "line": self.line,
            "kind": self.kind,
            "user": self.user,
            "intent": self.intent,
            "source": self.source,
            "confidence": round(self.confidence, 3),
            "script": self.script,
            "state": self.state,
            "status": self.status,
            "replies": self.replies,
            "ms": round(self.ms, 2),
            "llm_calls": self.llm_calls,
            "passed": not self.failures,
            "failures": self.failures,
        }


def parse_duration(text: str) -> float:
    """``25h``, ``30m``, ``1d``, ``1h30m``, ``90s`` → seconds; ValueError otherwise."""
    import re

    match = re.fullmatch(r"\s*(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?\s*", text)
    if not match or not any(match.groups()):
        raise ValueError(f"not a duration: {text!r}")
    days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return float(days * 86400 + hours * 3600 + minutes * 60 + seconds)


def load_file(path: str | Path) -> list[SimConversation]:
    """Parse one conversation-test file; SimulationError (with file:line) when invalid."""
    file = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SimulationError(f"cannot read the file: {exc}", file, 0) from exc
    root, problems = parse(text, file)
    if problems:
        first = problems[0]
        raise SimulationError(first.message, file, first.line)
    if not isinstance(root, YMap) or not isinstance(root.get("conversations"), YSeq):
        line = root.pos.line if root is not None else 1
        raise SimulationError("the file needs a list under 'conversations:'", file, line)
    conversations = root.get("conversations")
    assert isinstance(conversations, YSeq)
    return [_conversation(node, file, n) for n, node in enumerate(conversations.items, start=1)]


def _plain(node: YNode | None) -> Any:
    if node is None:
        return None
    if isinstance(node, YScalar):
        return node.value
    if isinstance(node, YSeq):
        return [_plain(item) for item in node.items]
    return {key: _plain(value) for key, value in node.items()}


def _conversation(node: YNode, file: str, number: int) -> SimConversation:
    if not isinstance(node, YMap):
        raise SimulationError("each conversation is a mapping with 'turns'", file, node.pos.line)
    unknown = [k for k, _ in node.items() if k not in ("name", "chat_id", "turns", "at")]
    if unknown:
        raise SimulationError(f"unknown key {unknown[0]!r} in a conversation", file, node.pos.line)
    turns_node = node.get("turns")
    if not isinstance(turns_node, YSeq) or not turns_node.items:
        raise SimulationError("a conversation needs a non-empty 'turns' list", file, node.pos.line)
    at_value = _plain(node.get("at"))
    at: datetime | None = None
    if at_value is not None:
        try:
            at = datetime.fromisoformat(str(at_value))
        except ValueError as exc:
            raise SimulationError(
                f"'at' is not an ISO datetime: {at_value!r}", file, node.pos.line
            ) from exc
        if at.tzinfo is None:
            raise SimulationError("'at' needs a time zone offset, e.g. -03:00", file, node.pos.line)
    chat = _plain(node.get("chat_id"))
    return SimConversation(
        name=str(_plain(node.get("name")) or f"conversa {number}"),
        turns=tuple(_turn(t, file) for t in turns_node.items),
        file=file,
        line=node.pos.line,
        chat_id=str(chat) if chat is not None else None,
        at=at,
    )


def _turn(node: YNode, file: str) -> SimTurn:
    line = node.pos.line
    if not isinstance(node, YMap):
        raise SimulationError("a turn is a mapping like {user: ..., expect: {...}}", file, line)
    keys = [k for k, _ in node.items()]
    kinds = [k for k in keys if k in TURN_KINDS]
    extra = [k for k in keys if k not in (*TURN_KINDS, "expect")]
    if extra:
        raise SimulationError(
            f"unknown key {extra[0]!r} in a turn (use user, handback, takeover, wait, expect)",
            file,
            line,
        )
    if len(kinds) != 1:
        raise SimulationError(
            "a turn has exactly one of user, handback, takeover, wait", file, line
        )
    expect = _plain(node.get("expect")) or {}
    if not isinstance(expect, dict):
        raise SimulationError("'expect' must be a mapping", file, line)
    bad = [k for k in expect if k not in EXPECT_KEYS]
    if bad:
        expect_node = node.get("expect")
        where = expect_node.key_pos.get(bad[0]) if isinstance(expect_node, YMap) else None
        raise SimulationError(
            f"unknown expect key {bad[0]!r}; allowed: {', '.join(EXPECT_KEYS)}",
            file,
            where.line if where else line,
        )
    kind = kinds[0]
    value = _plain(node.get(kind))
    if kind == "wait":
        try:
            return SimTurn("wait", seconds=parse_duration(str(value)), expect=expect, line=line)
        except ValueError as exc:
            raise SimulationError(str(exc), file, line) from exc
    if kind in ("handback", "takeover"):
        return SimTurn(kind, expect=expect, line=line)
    if value is None:
        value = ""
    return SimTurn("user", text=str(value), expect=expect, line=line)


def check(expect: Mapping[str, Any], result: TurnResult | None) -> list[str]:
    """Differences between what a turn expected and what it got, as readable lines."""
    if result is None:
        return [f"expected {dict(expect)} but the turn produced nothing"] if expect else []
    failures: list[str] = []
    joined = fold("\n".join(result.replies))
    got_simple = {
        "intent": result.intent,
        "script": result.script_id,
        "state": result.state,
        "status": result.status,
        "lead_status": result.lead_status,
        "source": result.source,
    }
    for key, got in got_simple.items():
        if key in expect and expect[key] != got:
            failures.append(f"{key}: expected {expect[key]!r}, got {got!r}")
    if "slots" in expect:
        for name, value in dict(expect["slots"] or {}).items():
            if result.slots.get(name) != value:
                failures.append(f"slots.{name}: expected {value!r}, got {result.slots.get(name)!r}")
    for needle in _as_list(expect.get("reply_contains")):
        if fold(str(needle)) not in joined:
            failures.append(
                f"reply should contain {needle!r}; replies were {list(result.replies)!r}"
            )
    for needle in _as_list(expect.get("reply_not_contains")):
        if fold(str(needle)) in joined:
            failures.append(
                f"reply should not contain {needle!r}; replies were {list(result.replies)!r}"
            )
    if expect.get("no_reply") is True and result.replies:
        failures.append(f"expected no reply, got {list(result.replies)!r}")
    if expect.get("no_reply") is False and not result.replies:
        failures.append("expected a reply, got none")
    if "handoff" in expect:
        failures += _check_handoff(expect["handoff"], result.handoff)
    if "brief" in expect:
        failures += _check_brief(expect["brief"], result.handoff)
    return failures


def _check_handoff(wanted: Any, got: Handoff | None) -> list[str]:
    if wanted is False:
        return [] if got is None else [f"expected no hand-off, got {got.reason!r}"]
    if got is None:
        return [f"expected a hand-off {wanted!r}, got none"]
    failures = []
    if isinstance(wanted, dict):
        for key in ("reason", "urgent"):
            if key in wanted and wanted[key] != got.get(key):
                failures.append(f"handoff.{key}: expected {wanted[key]!r}, got {got.get(key)!r}")
    return failures


def _check_brief(wanted: Any, got: Handoff | None) -> list[str]:
    if got is None or got.brief is None:
        return [f"expected a brief {wanted!r}, got no hand-off"]
    fields = got.brief.as_dict()
    failures = []
    for key, value in dict(wanted or {}).items():
        if key not in fields:
            failures.append(f"brief.{key}: the brief has no such field ({', '.join(fields)})")
            continue
        have = fields[key]
        texts = [fold(str(v)) for v in have] if isinstance(have, list) else [fold(str(have))]
        for needle in _as_list(value):
            if not any(fold(str(needle)) in text for text in texts):
                failures.append(f"brief.{key}: expected {needle!r} in {have!r}")
    return failures


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def run(
    engine: Engine,
    clock: ManualClock,
    conversations: Iterable[SimConversation],
) -> list[TurnRecord]:
    """Play every conversation through ``engine`` and compare with the expectations.

    Follow-ups are on: a ``wait`` turn moves the clock through the due follow-ups, and what
    they sent is that turn's replies (so ``expect: {reply_contains: ...}`` checks them).
    """
    sent: list[TurnResult] = []
    # An engine reused across runs keeps its service: point it at this run's list.
    engine.enable_follow_ups(sent.append, autorun=False).on_send = sent.append
    records: list[TurnRecord] = []
    for number, conv in enumerate(conversations, start=1):
        chat_id = conv.chat_id or f"sim-{abs(hash((conv.file, conv.name))) % 10**9}-{number}@c.us"
        if conv.at is not None:
            clock.set(conv.at)
        for turn in conv.turns:
            record = TurnRecord(conv.name, conv.file, turn.line, turn.kind, turn.text)
            result: TurnResult | None = None
            if turn.kind == "user":
                result = engine.handle(chat_id, turn.text)
            elif turn.kind == "handback":
                result = engine.hand_back(chat_id)
            elif turn.kind == "takeover":
                engine.take_over(chat_id)
            else:
                assert engine.follow_ups is not None
                sent.clear()
                engine.follow_ups.scheduler.advance_to(
                    clock.now() + timedelta(seconds=turn.seconds)
                )
                result = _waited(engine, chat_id, [r for r in sent if r.chat_id == chat_id])
            if result is not None:
                record.intent = result.intent
                record.source = result.source
                record.confidence = result.confidence
                record.script = result.script_id
                record.state = result.state
                record.status = result.status
                record.replies = list(result.replies)
                record.ms = result.ms
                record.llm_calls = result.llm_calls
                record.transitions = [
                    (result.script_id or "", str(e.data.get("from")), str(e.data.get("to")))
                    for e in result.events
                    if e.type == "state_changed"
                ]
            if turn.expect:
                record.failures = check(turn.expect, result)
            records.append(record)
            clock.advance(timedelta(seconds=30))
    return records


def _waited(engine: Engine, chat_id: str, fired: Sequence[TurnResult]) -> TurnResult:
    """A wait turn as a result: what the follow-ups sent and where the conversation is."""
    from clinicflow.dialogue import Conversation
    from clinicflow.engine import TurnResult

    conv = engine.conversation(chat_id) or Conversation()
    return TurnResult(
        chat_id=chat_id,
        replies=tuple(reply for result in fired for reply in result.replies),
        events=tuple(event for result in fired for event in result.events),
        script_id=conv.script_id,
        state=conv.state,
        slots=dict(conv.slots),
        status=conv.status or "bot",
        lead_status=conv.lead_status,
        intent=None,
        confidence=0.0,
        source="fallback",
    )


def coverage(engine: Engine, records: Sequence[TurnRecord]) -> dict[str, dict[str, Any]]:
    """Per script: states and transitions exercised, out of all those the script defines."""
    from clinicflow.diagram import edges

    visited: dict[str, set[str]] = {}
    taken: dict[str, set[tuple[str, str]]] = {}
    for record in records:
        for script_id, source, target in record.transitions:
            visited.setdefault(script_id, set()).add(target)
            taken.setdefault(script_id, set()).add((source, target))
    report: dict[str, dict[str, Any]] = {}
    for script in engine.catalog.scripts:
        all_edges = {(edge.source, edge.target) for edge in edges(script)}
        states = {s.name for s in script.states}
        seen_states = visited.get(script.id, set()) & states
        seen_edges = taken.get(script.id, set()) & all_edges
        report[script.id] = {
            "states": len(states),
            "states_covered": len(seen_states),
            "transitions": len(all_edges),
            "transitions_covered": len(seen_edges),
            "states_missed": sorted(states - seen_states),
        }
    return report
