"""Follow-up rules: which follow-up of a state comes next, when, or why none is sent.

:func:`plan_follow_up` is pure: from a conversation's facts it tells which follow-up of the
current state comes next and when, or why none will be sent (:class:`Dropped`). Times add up
from the last bot message (the state's own message, then each follow-up), are shifted into the
clinic's opening hours, and must stay inside WhatsApp's 24-hour window from the patient's last
message. :func:`plan_give_up` tells when an unanswered last follow-up makes the lead lost.

The durable scheduler that fires the planned jobs lives in :mod:`clinicflow.scheduler` and is
re-exported here, so ``from clinicflow.followups import FollowUpScheduler`` works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from clinicflow.scheduler import (
    FiredFollowUp,
    FollowUpScheduler,
    JobKind,
    PendingFollowUp,
    fire_follow_up,
)

if TYPE_CHECKING:
    from clinicflow.hours import BusinessHours
    from clinicflow.model import Script, State

__all__ = [
    "GIVE_UP_GRACE",
    "WINDOW",
    "Dropped",
    "FiredFollowUp",
    "FollowUpPlan",
    "FollowUpScheduler",
    "JobKind",
    "PendingFollowUp",
    "fire_follow_up",
    "plan_follow_up",
    "plan_give_up",
]

#: WhatsApp's customer-service window: free-form messages only this long after the patient's.
WINDOW = timedelta(hours=24)
#: The least time a patient gets to answer the last follow-up before the lead counts as lost.
GIVE_UP_GRACE = timedelta(hours=2)

DropReason = Literal["window", "max", "opted_out", "status", "none"]


@dataclass(frozen=True)
class FollowUpPlan:
    """The next follow-up of a state: which one, what it says and when it fires."""

    state: str
    index: int  # position in the state's follow_ups
    say: str  # the raw template; the engine fills it in like any other text
    due_at: datetime  # bot message + after
    fire_at: datetime  # due_at shifted into opening hours
    window_ends_at: datetime  # patient's last message + 24 h

    @property
    def shifted(self) -> bool:
        return self.fire_at != self.due_at


@dataclass(frozen=True)
class Dropped:
    """No follow-up will be sent, and why (``reason``; ``due_at`` when one was due)."""

    reason: DropReason
    state: str
    index: int
    due_at: datetime | None = None
    fire_at: datetime | None = None

    @property
    def recordable(self) -> bool:
        """Worth an event: a follow-up existed but a rule stopped it (window or maximum)."""
        return self.reason in ("window", "max")


def plan_follow_up(
    *,
    state: State,
    script: Script,
    sent_so_far: int,
    last_inbound_at: datetime | None,
    bot_message_at: datetime,
    hours: BusinessHours,
    opted_out: bool,
    status: str,
    index: int = 0,
) -> FollowUpPlan | Dropped:
    """The next follow-up after a bot message, or why there is none.

    Args:
        state: the state the conversation is in.
        script: its script (for ``max_follow_ups``).
        sent_so_far: follow-ups already sent in this conversation (``follow_ups_sent``).
        last_inbound_at: the patient's last message (None: she never wrote, no window).
        bot_message_at: the bot message this follow-up would answer to (the state's own
            message, or the previous follow-up).
        hours: the clinic's business hours.
        opted_out: the patient asked not to receive messages.
        status: the conversation status; only ``"bot"`` conversations get follow-ups.
        index: how many of this state's follow-ups were sent since the patient last wrote.

    Returns:
        A :class:`FollowUpPlan`, or :class:`Dropped` with reason ``opted_out``, ``status``,
        ``none`` (the state has no more follow-ups), ``max`` (the script's maximum per
        conversation is reached) or ``window`` (it would fire, after shifting into opening
        hours, when WhatsApp's 24-hour window is closed).
    """
    if opted_out:
        return Dropped("opted_out", state.name, index)
    if status != "bot":
        return Dropped("status", state.name, index)
    if not 0 <= index < len(state.follow_ups):
        return Dropped("none", state.name, index)
    follow = state.follow_ups[index]
    due_at = bot_message_at + timedelta(seconds=follow.after_seconds)
    if sent_so_far >= script.max_follow_ups:
        return Dropped("max", state.name, index, due_at)
    fire_at = hours.shift_into_open(due_at)
    if last_inbound_at is None or fire_at >= last_inbound_at + WINDOW:
        return Dropped("window", state.name, index, due_at, fire_at)
    return FollowUpPlan(
        state=state.name,
        index=index,
        say=follow.say,
        due_at=due_at,
        fire_at=fire_at,
        window_ends_at=last_inbound_at + WINDOW,
    )


def plan_give_up(*, last_inbound_at: datetime | None, last_follow_up_at: datetime) -> datetime:
    """When an unanswered last follow-up makes the lead lost.

    When WhatsApp's window closes, but never less than :data:`GIVE_UP_GRACE` after the
    last follow-up, so the patient always has a moment to answer.
    """
    floor = last_follow_up_at + GIVE_UP_GRACE
    if last_inbound_at is None:
        return floor
    return max(last_inbound_at + WINDOW, floor)
