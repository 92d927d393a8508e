"""Handing a conversation to a person: the notice she reads and the :class:`Handoff` value.

Within opening hours she is told the secretary will answer; outside them, honestly when the
clinic opens again (the staff are told then, unless it is urgent). An urgent hand-off gives the
guidance of its emergency category (SAMU 192; CVV 188 only for self-harm; 190/180 for
violence) and the staff are alerted at once.
"""

from __future__ import annotations

from clinicflow.clock import iso
from clinicflow.dialogue.conversation import Conversation
from clinicflow.dialogue.turn import Handoff, Turn
from clinicflow.dialogue.voice import Voice
from clinicflow.hours import BusinessHours


class Desk:
    """The hand-off policy over the clinic's texts and hours."""

    def __init__(self, voice: Voice, hours: BusinessHours | None) -> None:
        self.voice = voice
        self.hours = hours

    def closed_now(self, turn: Turn) -> bool:
        return self.hours is not None and not self.hours.is_open(turn.now)

    def hand_off(
        self,
        conv: Conversation,
        turn: Turn,
        reason: str,
        *,
        urgent: bool = False,
        announce: bool = True,
        resume: str | None = None,
        note: str = "",
        category: str | None = None,
    ) -> Handoff:
        if urgent:
            self.urgent_notice(conv, turn, category)
            notify_at = None
        else:
            notify_at = self.closed_notice(conv, turn, announce=announce, reason=reason)
        conv.status = "waiting_human"
        conv.resume_state = resume if resume is not None else conv.state
        conv.handoff_reason = reason
        conv.urgent = bool(urgent or conv.urgent)
        u = turn.understanding
        flags = (*u.red_flags, *u.urgent_symptoms) if u is not None and urgent else ()
        turn.handoff = Handoff(
            reason=reason,
            urgent=bool(urgent),
            red_flags=tuple(flags),
            category=category,
            sure=u.safety.sure if u is not None and urgent else True,
            notify_at=notify_at,
        )
        turn.event(
            "handoff_requested", reason=reason, urgent=bool(urgent), note=note, queued=notify_at
        )
        return turn.handoff

    def urgent_notice(self, conv: Conversation, turn: Turn, category: str | None) -> None:
        """Where to go now, in the words of the emergency's category; when the clinic is
        closed, also when a person will answer and the emergency numbers."""
        voice = self.voice
        voice.say(conv, turn, voice.guidance("urgent", category))
        if self.closed_now(turn):
            self.closed_notice(conv, turn, announce=False, urgent=True)
            voice.say(conv, turn, voice.guidance("emergency", category))

    def answers_while_waiting(self, conv: Conversation, turn: Turn) -> bool:
        """Whether the bot answers her questions now: handed off (not urgently: then the
        staff were alerted at once) while the clinic is closed, and no person has written."""
        return conv.status == "waiting_human" and not conv.urgent and self.closed_now(turn)

    def closed_notice(
        self,
        conv: Conversation,
        turn: Turn,
        *,
        announce: bool,
        urgent: bool = False,
        reason: str | None = None,
    ) -> str | None:
        """The hand-off line (``handoff_<reason>`` when the clinic has one, e.g. for a data
        request, else ``handoff``); when closed, honest about the next opening and about what
        the bot still does meanwhile (:meth:`answers_while_waiting`). Returns when to tell the
        staff (ISO instant of the next opening) or None for now."""
        voice = self.voice
        if self.hours is None or self.hours.is_open(turn.now):
            if announce:
                voice.say(conv, turn, voice.text_or(f"handoff_{reason}", "handoff"))
            return None
        opening = self.hours.next_opening(turn.now)
        when = self.hours.describe_opening(opening, turn.now)
        voice.say(conv, turn, voice.text("out_of_hours"), proxima_abertura=when)
        if not urgent:
            voice.say(conv, turn, voice.text("while_waiting"))
        return iso(opening)
