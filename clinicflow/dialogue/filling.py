"""What a message says about the slots: answers, values given before being asked, corrections,
and the day and period she wants (for the brief).

Pure functions over a script's slots and the stored values, and :class:`SlotKeeper`, which
writes what they return into the conversation. Rules:

- the slot just asked is read leniently from the message's answer (its statements, not its
  questions); an intent is not an answer: "quero marcar" never answers a yes/no question;
- any other empty slot is filled only from explicit forms ("me chamo…", "de manhã", a
  choice's label or synonym, "tenho 42 anos"), from any message of the conversation;
- a filled slot changes only on a correction: a marker ("não, …", "na verdade …", "errei",
  "me enganei", "quis dizer") with a new explicit value, or a new value for the slot filled
  last ("Ana" / "não, é Bia"); a name said as "meu nome é …" corrects by itself.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from clinicflow import slots as slot_values
from clinicflow.dialogue.clauses import is_question
from clinicflow.dialogue.conversation import Conversation
from clinicflow.dialogue.turn import Turn
from clinicflow.dialogue.voice import Voice
from clinicflow.model import Script, Slot
from clinicflow.text import fold, words
from clinicflow.understanding import QUESTION_INTENTS, Understanding

# Intents that ask for something: the words of such a message are not an answer to a yes/no
# question ("quero marcar" is not "sim"), whatever a parser finds in them.
_NOT_ANSWERS = frozenset(
    {
        "schedule",
        "human",
        "complaint",
        "reschedule_cancel",
        "opt_out",
        "medical_advice",
        "privacy_request",
    }
    | QUESTION_INTENTS
)
_CORRECTION_RE = re.compile(
    r"^\s*(?:nao|na verdade|errei|me enganei|opa|ops|desculpa|desculpe|corrigindo|"
    r"quis dizer|pera|perai|o certo e)\b[\s,.!:;-]*(?:(?:eu )?(?:errei|me enganei|quis dizer)"
    r"\b[\s,.!:;-]*)?(?:na verdade\b[\s,.!:;-]*)?"
    r"|\b(?:na verdade|errei|me enganei|quis dizer|o certo e)\b"
)
_NAME_LEADS = frozenset({"e", "sou", "a", "o", "eu", "me", "chamo", "chama", "nome", "meu"})
_SELF_NAMED_RE = re.compile(r"\b(?:meu nome e|me chamo|pode me chamar de)\b")
_WHEN_RE = re.compile(
    r"\b(?:depois de amanha|amanha|semana que vem|proxima semana|nessa semana|esta semana|"
    r"essa semana|fim de semana|final de semana|mes que vem|proximo mes|"
    r"(?:na |nesta |nessa |proxima |no |neste |nesse |proximo )?"
    r"(?:segunda|terca|quarta|quinta|sexta)(?:[ -]feira)?|"
    r"(?:no |neste |nesse |proximo )?(?:sabado|domingo)|"
    r"dia \d{1,2}(?:/\d{1,2})?|\d{1,2}/\d{1,2})\b"
)


# Asking for a time to come ("posso ir…", "tem horário…", "dá pra marcar…"): with a day or a
# period named, a booking request whatever the classifier made of it.
_BOOKING_RE = re.compile(
    r"\b(?:marcar|marca|agendar|agenda|agendamento|reservar|encaixe|encaixar|encaixa|"
    r"(?:tem|teria|algum|alguma|um|uma|outro|outra)\s+(?:horario|vaga|hora)s?|"
    r"(?:horario|vaga|hora)s?\s+(?:disponive(?:l|is)|livres?|vagos?|pra|para|na|no)|"
    r"(?:posso|podia|poderia|consigo|conseguiria|da pra|daria pra|tem como|quero|queria|"
    r"gostaria de|vou|iria|preferia|prefiro)\s+(?:ir|passar|aparecer|comparecer|vir|"
    r"ser atendida|consultar)|pode ser)\b"
)
_NOT_BOOKING_RE = re.compile(
    r"\b(?:remarcar|desmarcar|cancelar|trocar|mudar|adiar)\b|"
    r"\bnao\s+(?:\w+\s+)?(?:marcar|agendar|posso|consigo|quero|queria|vou|da)\b"
)


def booking_request(text: str, today: dt.date) -> bool:
    """Whether a message asks to come at a day or period it names ("posso ir amanhã de
    manhã?", "tem horário sexta à tarde?"); never a rescheduling or a refusal."""
    folded = fold(text)
    if not _BOOKING_RE.search(folded) or _NOT_BOOKING_RE.search(folded):
        return False
    return when(text) is not None or period(text, today) is not None


def is_answer(u: Understanding | None, slot: Slot, text: str = "") -> bool:
    """Whether a clause understood as ``u`` may answer ``slot`` at all (an intent to book or
    a question is not a yes; a question is not her name unless she names herself in it:
    "cadê vocês???" is not "Cadê")."""
    if slot.type == "name" and is_question(text) and not _SELF_NAMED_RE.search(fold(text)):
        return False
    if slot.type != "yes_no" or u is None or u.intent is None:
        return True
    return u.intent not in _NOT_ANSWERS


def answer(slot: Slot, texts: Sequence[str], today: dt.date) -> slot_values.SlotValue | None:
    """The asked slot's value in the answer clauses (read together)."""
    return slot_values.parse(slot, " . ".join(texts), today) if texts else None


def explicit(
    script: Script,
    filled: Mapping[str, Any],
    text: str,
    today: dt.date,
    asked: Slot | None = None,
) -> dict[str, slot_values.SlotValue]:
    """Values for empty slots written explicitly, the asked one read leniently."""
    open_slots = [s for s in script.slots if s is asked or filled.get(s.name) is None]
    return slot_values.extract(open_slots, text, today, asked.name if asked else None)


def correction_marked(text: str) -> bool:
    return bool(_CORRECTION_RE.search(fold(text)))


def without_marker(text: str) -> str:
    """The message after a leading correction marker ("não, é Bia" → "é Bia")."""
    match = _CORRECTION_RE.match(fold(text))
    if match is None or not match.group():
        return text
    # fold() keeps length for Latin text; cut the original at the same place.
    return text[len(match.group()) :] if len(fold(text)) == len(text) else text


def corrections(
    script: Script,
    filled: Mapping[str, Any],
    text: str,
    today: dt.date,
    *,
    last: str | None,
    asked: Slot | None,
) -> dict[str, slot_values.SlotValue]:
    """Filled slots the message corrects, with their new values ({} when none)."""
    marked = correction_marked(text)
    folded = fold(text)
    if not marked and not _SELF_NAMED_RE.search(folded):
        return {}
    done = [s for s in script.slots if filled.get(s.name) is not None]
    if not marked:
        done = [s for s in done if s.type == "name"]
    found = slot_values.extract(done, text, today, None)
    changed = {name: value for name, value in found.items() if filled.get(name) != value}
    if changed or not marked or last is None or filled.get(last) is None:
        return changed
    if asked is not None and asked.type == "yes_no" and folded.lstrip().startswith("nao"):
        return {}  # "não, nunca usei": the answer to the question asked now
    slot = script.slot(last)
    if slot is None or slot.type == "yes_no":
        return {}
    rest = without_marker(text)
    if slot.type == "name":
        # "não, é Bia": one word besides "é", "sou a"…; never a name out of a longer sentence.
        named = [w for w in rest.split() if words(w) and words(w)[0] not in _NAME_LEADS]
        if len(named) != 1:
            return {}
        rest = named[0]
    value = slot_values.parse(slot, rest, today)
    if value is None or value == filled.get(last):
        return {}
    if asked is not None and asked.type != "yes_no" and slot_values.parse(asked, rest, today):
        return {}  # it answers the question asked now
    return {last: value}


def when(text: str) -> str | None:
    """Her words for a day ("semana que vem", "amanhã", "sexta", "dia 12"), or None."""
    found = [m.group() for m in _WHEN_RE.finditer(fold(text))]
    return ", ".join(dict.fromkeys(found)) or None


def period(text: str, today: dt.date) -> str | None:
    """A period named explicitly ("de manhã", "à tarde"), or None."""
    value = slot_values.extract([_PERIOD_SLOT], text, today, None).get(_PERIOD_SLOT.name)
    return str(value) if value is not None else None


_PERIOD_SLOT = Slot("periodo", "period", "")


class SlotKeeper:
    """Writes what a message says into the conversation's slots (see the module docstring)."""

    def __init__(self, voice: Voice, tz: ZoneInfo) -> None:
        self.voice = voice
        self.tz = tz

    def today(self, turn: Turn) -> dt.date:
        return turn.now.astimezone(self.tz).date()

    def write(
        self, conv: Conversation, turn: Turn, values: dict[str, object], asked: str | None
    ) -> None:
        """Store new values; a slot filled before its question is remembered (``told``)."""
        for name, value in values.items():
            if conv.slots.get(name) != value:
                conv.slots[name] = value
                conv.last_filled = name
                turn.event("slot_filled", slot=name)
                if name != asked and name not in conv.told:
                    conv.told = [*conv.told, name]

    def absorb(self, conv: Conversation, turn: Turn, script: Script, texts: list[str]) -> None:
        """Values written explicitly in any message fill the script's empty slots."""
        text = " . ".join(t for t in texts if t.strip())
        if text:
            self.write(conv, turn, dict(explicit(script, conv.slots, text, self.today(turn))), None)

    def fill(
        self, conv: Conversation, turn: Turn, script: Script, slot: Slot, texts: list[str]
    ) -> bool:
        """Take every slot value the message carries (the asked one from ``texts``, its
        answer clauses); True if the asked one was filled."""
        today = self.today(turn)
        found: dict[str, object] = {}
        answer_text = " . ".join(t for t in texts if t.strip())
        if answer_text:
            asked = explicit(script, conv.slots, answer_text, today, asked=slot)
            if slot.name in asked:
                found[slot.name] = asked[slot.name]
        for name, value in explicit(script, conv.slots, turn.text, today).items():
            if name != slot.name:
                found.setdefault(name, value)
        u = turn.understanding
        if u is not None and texts:  # what Gemini read, where the local parsers did not
            names = {s.name for s in script.slots if s is slot or conv.slots.get(s.name) is None}
            for name, value in u.llm_slots:
                if name in names:
                    found.setdefault(name, value)
        self.write(conv, turn, found, slot.name)
        return slot.name in found

    def correct(self, conv: Conversation, turn: Turn, script: Script, slot: Slot | None) -> bool:
        """Apply the corrections the message makes and say so; True if it made any."""
        changed = corrections(
            script, conv.slots, turn.text, self.today(turn), last=conv.last_filled, asked=slot
        )
        if not changed:
            return False
        shown = []
        for name, value in changed.items():
            conv.slots[name] = value
            conv.last_filled = name
            turn.event("slot_corrected", slot=name)
            shown.append(self.voice.shown(script, name, value))
        self.voice.say(conv, turn, self.voice.text("corrected"), correcao=", ".join(shown))
        return True

    def notice(self, conv: Conversation, turn: Turn) -> str | None:
        """The day and period she mentions, kept for the brief; returns the day, if any."""
        day = None
        if slot_values.option_number(turn.text, 10) is None:  # "a segunda" picks option 2
            day = when(turn.text)
            if day:
                conv.when = day
        named = period(turn.text, self.today(turn))
        if named:
            conv.period = named
        return day
