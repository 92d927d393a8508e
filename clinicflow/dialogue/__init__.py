"""The dialogue: what the bot does with one understood message.

The parts: :mod:`.conversation` (the typed :class:`Conversation` and its checkpoint form),
:mod:`.turn` (one turn's working data, the message's :class:`Part` s and the :class:`Handoff`),
:mod:`.policy` (the :class:`Dialogue`: what to do with a message, step by step),
:mod:`.machine` (entering and leaving the script's states),
:mod:`.routing` (choosing the procedure), :mod:`.filling` (slot values, corrections, the day
and period she wants), :mod:`.answers` (FAQ answers, small talk, a goodbye that is meant),
:mod:`.clauses` (a message cut into answers and questions), :mod:`.handoff` (handing over to a
person) and :mod:`.voice` (the catalog's texts as she reads them).
"""

from clinicflow.dialogue.answers import Answerer, FaqFinder, acts_on
from clinicflow.dialogue.conversation import ROUTING, Conversation
from clinicflow.dialogue.machine import MAX_HOPS
from clinicflow.dialogue.policy import DEFAULT_MAX_ATTEMPTS, ESCALATIONS, REPAIR_BUDGET, Dialogue
from clinicflow.dialogue.turn import Event, Handoff, Part, Turn

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "ESCALATIONS",
    "MAX_HOPS",
    "REPAIR_BUDGET",
    "ROUTING",
    "Answerer",
    "Conversation",
    "Dialogue",
    "Event",
    "FaqFinder",
    "Handoff",
    "Part",
    "Turn",
    "acts_on",
]
