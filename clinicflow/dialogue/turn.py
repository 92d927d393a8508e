"""The working data of one turn (never checkpointed) and the hand-off it may produce.

:class:`Turn` collects the replies and events of one message; :class:`Part` is one clause of
it with its own understanding (a message may answer and ask, or ask several things);
:class:`Handoff` is what the turn hands to the staff, the same value the engine returns in
:class:`~clinicflow.engine.TurnResult`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from clinicflow.dialogue.clauses import is_question
from clinicflow.dialogue.conversation import Conversation
from clinicflow.understanding import Understanding

if TYPE_CHECKING:
    from clinicflow.brief import Brief


@dataclass
class Event:
    """Something that happened in a turn (stored in the events table)."""

    type: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Part:
    """One clause of a message and what it means on its own."""

    text: str
    understanding: Understanding
    question: bool  # asked something ("?", or starts like a question)


@dataclass(frozen=True)
class Handoff:
    """A conversation handed to a person: why, how urgent, when to tell the staff, the brief.

    Reads like the dict it replaced too (``handoff["reason"]``, ``handoff.get("brief")``;
    ``"brief"`` there is the text sent to the staff).
    """

    reason: str
    urgent: bool = False
    red_flags: tuple[str, ...] = ()
    category: str | None = None
    sure: bool = True
    notify_at: str | None = None  # ISO instant of the next opening; None: tell the staff now
    brief: Brief | None = None  # composed when the turn is saved

    @property
    def brief_text(self) -> str | None:
        """What the staff receive on WhatsApp."""
        return self.brief.text() if self.brief is not None else None

    def __getitem__(self, key: str) -> Any:
        if key == "brief":
            return self.brief_text
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        value = getattr(self, key)
        return list(value) if isinstance(value, tuple) else value

    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self) | {"red_flags": list(self.red_flags)}
        out["brief"] = self.brief.as_dict() if self.brief is not None else None
        return out


@dataclass
class Turn:
    """The working data of one turn; never checkpointed."""

    chat_id: str
    text: str
    now: datetime
    replies: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    understanding: Understanding | None = None
    parts: tuple[Part, ...] = ()  # the clauses understood one by one (empty: one clause)
    answered: set[int] = field(default_factory=set)  # parts whose question was answered
    silent: bool = False
    handoff: Handoff | None = None
    llm_calls: list[Any] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)  # channel id, push name, referral, kind
    started: float = 0.0  # time.perf_counter() when the turn began (the LLM time budget)
    conv: Conversation = field(default_factory=Conversation)  # the conversation being changed

    def event(self, type_: str, **data: Any) -> None:
        self.events.append(Event(type_, data))

    def pieces(self) -> tuple[Part, ...]:
        """The message's parts; the whole message when it was not split."""
        if self.parts:
            return self.parts
        u = self.understanding or Understanding(None, 0.0, "fallback")
        return (Part(self.text, u, is_question(self.text)),)
