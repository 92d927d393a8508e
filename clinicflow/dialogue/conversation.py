"""The conversation's state as a typed value, and its JSON-plain checkpoint form.

:class:`Conversation` is what the engine keeps between two messages of one chat: where the
script stands, the slots, the counters, the lead, and what she asked for. LangGraph stores its
:meth:`~Conversation.to_checkpoint` dict (plain JSON: strings, numbers, lists, dicts), and
:meth:`~Conversation.from_checkpoint` reads any earlier form back (missing keys take their
defaults, unknown keys are ignored), so checkpoints written by older versions still load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

ROUTING = "__routing__"  # pseudo-state: the patient is choosing a procedure

#: ``Conversation.status`` values; "" is a conversation that has not started yet.
STATUSES = ("bot", "waiting_human", "human", "closed")
MAX_NOTES = 3  # messages kept from before a procedure was chosen (read when one is)
MAX_QUESTIONS = 5  # questions left unanswered, kept for the brief


@dataclass
class Conversation:
    """One chat's state between messages (mutable: a turn works on it, then it is saved)."""

    status: str = ""
    script_id: str | None = None
    digest: str | None = None  # the pinned script version (its content hash)
    version: str | None = None
    state: str | None = None
    resume_state: str | None = None  # where a hand-back resumes
    slots: dict[str, Any] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)
    repairs: int = 0  # consecutive turns not understood
    lead_status: str = "new"
    lead_times: dict[str, str] = field(default_factory=dict)
    lost_reason: str | None = None
    score: int = 0
    turns: int = 0
    follow_ups_sent: int = 0
    opted_out: bool = False
    handoff_reason: str | None = None
    urgent: bool = False
    origin: str = ""
    push_name: str = ""
    started_at: str = ""
    last_inbound_at: str | None = None
    last_outbound_at: str | None = None
    introduced: bool = False  # the bot said who it is (once per conversation)
    when: str | None = None  # her words for a day ("semana que vem", "amanhã"), for the brief
    period: str | None = None  # a period she named anywhere (manhã, tarde, noite, qualquer)
    questions: list[str] = field(default_factory=list)  # asked and not answered
    notes: list[str] = field(default_factory=list)  # messages before a procedure was chosen
    told: list[str] = field(default_factory=list)  # slots she filled before being asked
    last_filled: str | None = None  # the slot filled last (what "não, …" may correct)
    booking: bool = False  # asked to book with the procedure: hand off after the first question

    @property
    def is_new(self) -> bool:
        return not self.status

    @property
    def in_script(self) -> bool:
        """On a script step (not choosing a procedure)."""
        return self.digest is not None and self.state not in (None, ROUTING)

    def to_checkpoint(self) -> dict[str, Any]:
        """The JSON-plain dict LangGraph stores (copies: the value can keep changing)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict):
                value = dict(value)
            elif isinstance(value, list):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_checkpoint(cls, data: Mapping[str, Any] | None) -> Conversation:
        """A conversation from any stored form (None or {}: a new one)."""
        if not data:
            return cls()
        conv = cls()
        for f in fields(cls):
            if f.name not in data or data[f.name] is None:
                continue
            value = data[f.name]
            default = getattr(conv, f.name)
            if isinstance(default, bool):
                value = bool(value)
            elif isinstance(default, int):
                value = int(value)
            elif isinstance(default, dict):
                value = dict(value) if isinstance(value, Mapping) else {}
            elif isinstance(default, list):
                value = list(value) if isinstance(value, list | tuple) else []
            setattr(conv, f.name, value)
        if "introduced" not in data and conv.status:
            conv.introduced = True  # an older conversation already under way said hello
        return conv

    def note(self, text: str) -> None:
        """Keep a message said before a procedure was chosen (read when one is)."""
        clipped = " ".join(text.split())[:300]
        if clipped:
            self.notes = [*self.notes, clipped][-MAX_NOTES:]

    def ask_later(self, question: str) -> None:
        """Remember a question the bot could not answer (the brief lists them)."""
        clipped = " ".join(question.split())[:200]
        if clipped and clipped not in self.questions:
            self.questions = [*self.questions, clipped][-MAX_QUESTIONS:]
