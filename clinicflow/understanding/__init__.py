"""Understanding a patient's message: safety first, then the intent.

The parts: :mod:`.cascade` (the order of the steps and the :class:`Understanding` value),
:mod:`.safety` with :mod:`.signs` and :mod:`.context` (is this an emergency happening now?),
:mod:`.classifier` and :mod:`.corpus` (the trained intent model and what it learns from),
:mod:`.answers` (bare numbers and yes/no).
"""

from clinicflow.understanding.answers import numbered_choice, yes_no
from clinicflow.understanding.cascade import (
    COMPLIANCE_WORDS,
    QUESTION_INTENTS,
    Source,
    Understander,
    Understanding,
)
from clinicflow.understanding.safety import NOT_URGENT, SafetyVerdict

__all__ = [
    "COMPLIANCE_WORDS",
    "NOT_URGENT",
    "QUESTION_INTENTS",
    "SafetyVerdict",
    "Source",
    "Understander",
    "Understanding",
    "numbered_choice",
    "yes_no",
]
