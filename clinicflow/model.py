"""The catalog as frozen values: clinic facts, scripts, states, slots, FAQ, red flags.

Everything here is built once by :mod:`clinicflow.loader` from YAML and never mutated.
Each value that came from a file keeps its :class:`Pos` so later checks (lint, the engine's
own validation) can point a clinic secretary at the exact line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: The closed intent vocabulary shared by every script and by ``clinicflow classify``.
INTENTS: tuple[str, ...] = (
    "greeting",
    "thanks",
    "goodbye",
    "affirm",
    "deny",
    "ask_price",
    "ask_info",
    "ask_location",
    "ask_hours",
    "ask_insurance",
    "schedule",
    "reschedule_cancel",
    "human",
    "complaint",
    "urgent",
    "medical_advice",
    "bot_check",
    "opt_out",
    "privacy_request",
    "out_of_scope",
)

#: Emergency categories of the safety detector (each with its own guidance to the patient).
EMERGENCY_CATEGORIES: tuple[str, ...] = (
    "bleeding",
    "fever_infection",
    "severe_pain",
    "breathing_allergy",
    "stroke",
    "chest_pain",
    "thrombosis",
    "fainting",
    "self_harm",
    "pregnancy",
    "wound",
    "violence",
    "dehydration",
)

#: The closed set of reasons a conversation is handed to a human.
HANDOFF_REASONS: tuple[str, ...] = (
    "schedule",
    "human_request",
    "urgent",
    "complaint",
    "not_understood",
    "data_request",
    "other",
)

#: Short pt-BR names of the hand-off reasons, for reports and the dashboard.
HANDOFF_REASON_LABELS: dict[str, str] = {
    "schedule": "agendar",
    "human_request": "pediu uma pessoa",
    "urgent": "urgente",
    "complaint": "reclamação",
    "not_understood": "robô não entendeu",
    "data_request": "pedido sobre os dados (LGPD)",
    "voice_note": "áudio para ouvir",
    "other": "outro motivo",
}

SLOT_TYPES: tuple[str, ...] = (
    "text",
    "name",
    "phone",
    "email",
    "date",
    "period",
    "choice",
    "yes_no",
    "number",
)

SlotType = Literal["text", "name", "phone", "email", "date", "period", "choice", "yes_no", "number"]
ExhaustedAction = Literal["handoff", "skip", "goto"]


@dataclass(frozen=True)
class Pos:
    """Where a value was written: file, 1-based line and column."""

    file: str = "<memory>"
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NOWHERE = Pos()


@dataclass(frozen=True)
class Option:
    """One option of a ``choice`` slot; answerable by number, label, value or synonym."""

    value: str
    label: str
    synonyms: tuple[str, ...] = ()
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class OnExhausted:
    """What happens when a slot's attempts run out."""

    action: ExhaustedAction
    target: str | None = None  # the state for ``goto``, the reason for ``handoff``
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Slot:
    """A piece of information the script collects from the patient."""

    name: str
    type: SlotType
    ask: str
    reprompts: tuple[str, ...] = ()
    max_attempts: int | None = None
    on_exhausted: OnExhausted | None = None
    options: tuple[Option, ...] = ()
    min: float | None = None
    max: float | None = None
    pos: Pos = NOWHERE
    multiple: bool = False  # a choice that takes several options at once (stored as a list)


@dataclass(frozen=True)
class MenuItem:
    """One numbered line of a menu, leading to a state."""

    label: str
    go: str
    synonyms: tuple[str, ...] = ()
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Menu:
    """A numbered menu the patient answers with a number or words."""

    prompt: str
    items: tuple[MenuItem, ...]
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Branch:
    """A conditional transition: ``if`` a safe expression over slots holds, ``go`` to a state."""

    condition: str
    go: str
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class FollowUp:
    """A message sent when the patient has been quiet for ``after_seconds`` in a state."""

    after_seconds: int
    say: str
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class State:
    """One step of a script."""

    name: str
    say: tuple[str, ...] = ()
    collect: str | None = None
    menu: Menu | None = None
    on: tuple[tuple[str, str], ...] = ()  # (intent, target state), in file order
    when: tuple[Branch, ...] = ()
    next: str | None = None
    handoff: str | None = None  # a reason from HANDOFF_REASONS
    end: bool = False
    follow_ups: tuple[FollowUp, ...] = ()
    llm_answers: bool = False  # may Gemini answer questions the FAQ does not cover here
    pos: Pos = NOWHERE

    @property
    def is_terminal(self) -> bool:
        return self.end or self.handoff is not None

    def target_for(self, intent: str) -> str | None:
        for name, target in self.on:
            if name == intent:
                return target
        return None


@dataclass(frozen=True)
class FAQ:
    """A question patients ask, its phrasings, and the clinic's approved answer."""

    id: str
    questions: tuple[str, ...]
    answer: str
    intent: str | None = None  # the intent this FAQ answers (ask_price, ask_location...)
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class RedFlag:
    """Symptoms that mean "get a human now"; matched as whole words or phrases."""

    id: str
    phrases: tuple[str, ...]
    description: str = ""
    category: str | None = None  # an emergency category (its guidance); None: the generic one
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Triggers:
    """How a new conversation is routed to a script."""

    keywords: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class LeadScoring:
    """Points per conversation event and the score from which a lead counts as qualified."""

    weights: tuple[tuple[str, int], ...] = ()
    qualified_at: int = 30
    pos: Pos = NOWHERE

    def weight(self, event: str) -> int:
        for name, points in self.weights:
            if name == event:
                return points
        return 0


@dataclass(frozen=True)
class Script:
    """A procedure script: a YAML state machine the clinic staff edit."""

    id: str
    title: str
    version: str
    start: str
    states: tuple[State, ...]
    language: str = "pt-BR"
    description: str = ""
    triggers: Triggers = field(default_factory=Triggers)
    slots: tuple[Slot, ...] = ()
    faq: tuple[FAQ, ...] = ()
    red_flags: tuple[RedFlag, ...] = ()
    lead_scoring: LeadScoring | None = None
    on: tuple[tuple[str, str], ...] = ()  # script-wide intent transitions (a state's own win)
    max_follow_ups: int = 2
    path: str = "<memory>"
    digest: str = ""  # content hash of the source file; conversations pin it
    pos: Pos = NOWHERE
    # Where each value was written, by dotted path ("states.inicio.next", "slots.nome.ask");
    # lint uses it to point at the exact line. Not part of equality.
    positions: tuple[tuple[str, Pos], ...] = field(default=(), compare=False, repr=False)

    def state(self, name: str) -> State:
        for state in self.states:
            if state.name == name:
                return state
        raise KeyError(name)

    def has_state(self, name: str) -> bool:
        return any(state.name == name for state in self.states)

    def slot(self, name: str) -> Slot | None:
        for slot in self.slots:
            if slot.name == name:
                return slot
        return None


@dataclass(frozen=True)
class IntentDef:
    """The catalog's own phrasings of one intent of the closed vocabulary.

    ``examples`` and ``keywords`` train the intent model on top of the shipped corpus;
    ``exact`` phrases decide the intent when they are the whole message ("atendente").
    """

    name: str
    examples: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    exact: tuple[str, ...] = ()
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Staff:
    """A person the hand-off brief is sent to; ``phone`` is E.164 digits once loaded."""

    name: str
    phone: str
    role: str = "secretary"
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Campaign:
    """A paid campaign; first messages matching ``patterns`` are attributed to it."""

    id: str
    name: str
    channel: str
    monthly_cost: float = 0.0
    patterns: tuple[str, ...] = ()
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Hours:
    """Opening hours: for each weekday (0=Monday) a list of (open, close) minutes of the day."""

    weekly: tuple[tuple[tuple[int, int], ...], ...] = ((),) * 7
    holidays: tuple[str, ...] = ()  # the catalog's own closed days, ISO dates
    timezone: str = "America/Sao_Paulo"
    pos: Pos = NOWHERE
    country: str | None = None  # public holidays from the holidays library (BR)
    subdivision: str | None = None  # the state (SP), for its own holidays
    optional_holidays: tuple[str, ...] = ()  # optional days also kept closed (Carnaval)
    yearly_closures: tuple[str, ...] = ()  # the catalog's closed days every year, MM-DD


@dataclass(frozen=True)
class Privacy:
    """LGPD: who controls the patients' data, what is kept, how to ask, how long texts live."""

    controller: str  # who is responsible for the data (the clinic's legal name)
    requests: str  # how a patient asks to see or delete her data
    kept: str = ""  # what is kept and why, in plain words
    retention_days: int | None = None  # message texts older than this are redacted
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Understanding:
    """Confidence thresholds of the understanding cascade (measured; see bench/)."""

    intent_accept: float = 0.35  # the model's best intent below this: not understood
    intent_sure: float = 0.60  # below this a guess never hands off; Gemini gets a say
    faq_accept: float = 0.70  # nearest FAQ question at least this similar: answer it
    route_accept: float = 0.70  # nearest trigger example at least this similar: route
    pos: Pos = NOWHERE


@dataclass(frozen=True)
class Clinic:
    """clinic.yaml: facts, hours, staff, intents, clinic-wide FAQ, red flags and texts."""

    name: str
    facts: tuple[tuple[str, str], ...]  # template-visible facts: clinica.<key>
    hours: Hours
    staff: tuple[Staff, ...]
    intents: tuple[IntentDef, ...]
    texts: tuple[tuple[str, str], ...]
    faq: tuple[FAQ, ...] = ()
    red_flags: tuple[RedFlag, ...] = ()
    lead_scoring: LeadScoring = field(default_factory=LeadScoring)
    campaigns: tuple[Campaign, ...] = ()
    understanding: Understanding = field(default_factory=Understanding)
    path: str = "<memory>"
    pos: Pos = NOWHERE
    country: str = "BR"  # ISO 3166 code for phone numbers written without a country code
    # Where each value was written, by dotted path ("texts.welcome"); see Script.positions.
    positions: tuple[tuple[str, Pos], ...] = field(default=(), compare=False, repr=False)
    privacy: Privacy | None = None  # the ``privacy`` section (LGPD), when written

    @property
    def privacy_notice(self) -> str | None:
        """``texts.privacy_notice``: what a patient is told on first contact, if set."""
        return next((value for name, value in self.texts if name == "privacy_notice"), None)

    def text(self, key: str) -> str:
        for name, value in self.texts:
            if name == key:
                return value
        raise KeyError(key)

    def fact(self, key: str) -> str | None:
        for name, value in self.facts:
            if name == key:
                return value
        return None

    def intent(self, name: str) -> IntentDef | None:
        for intent in self.intents:
            if intent.name == name:
                return intent
        return None


@dataclass(frozen=True)
class Catalog:
    """A whole catalog folder: the clinic and its scripts, with a content digest."""

    clinic: Clinic
    scripts: tuple[Script, ...]
    root: str
    digest: str

    def script(self, script_id: str) -> Script | None:
        for script in self.scripts:
            if script.id == script_id:
                return script
        return None
