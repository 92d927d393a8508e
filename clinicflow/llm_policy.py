"""How a language-model call is retried within its budget, and how its failures are named.

The policy behind :class:`clinicflow.llm.GeminiLLM`, kept apart so that it reads (and is
tested) without the SDK: :class:`Attempts` decides each attempt's timeout and whether one more
attempt fits in the budget; :func:`classify` turns an exception from the SDK or its HTTP
library into an outcome; :func:`interpret` turns an accepted response into one. The voice-note
transcription's instruction and limits live here too (:data:`TRANSCRIBE_SYSTEM`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger("clinicflow.llm")

OUTCOMES = (
    "ok",
    "rate_limited",
    "server_error",
    "timeout",
    "refused",
    "malformed",
    "client_error",
    "error",
)
"""Every value ``LLMCall.outcome`` can take."""

RETRYABLE = frozenset({"rate_limited", "server_error", "timeout", "refused", "malformed"})
"""Outcomes worth one more attempt."""

_MIN_ATTEMPT_S = 0.2  # do not start a retry with less time than this left
EPSILON_S = 0.05  # below this there is no point in starting any attempt


class Attempts:
    """The retry policy and the running totals of one call, attempt after attempt."""

    def __init__(
        self,
        *,
        timeout_s: float,
        retries: int,
        budget_s: float,
        backoff_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.clock = clock
        self.started = clock()
        self.deadline = self.started + max(budget_s, 0.0)
        self.count = 0
        self.outcome = "timeout"  # what we report if no attempt can even start
        self.tokens_in = 0
        self.tokens_out = 0

    def timeout(self) -> float | None:
        """Seconds allowed for the next attempt, or None when there is no time for one."""
        remaining = self.deadline - self.clock()
        if remaining < EPSILON_S:
            return None
        self.count += 1
        return min(self.timeout_s, remaining)

    def done(self, outcome: str, usage: Any) -> float | None:
        """Record an attempt; return the backoff before the next one, or None to stop."""
        self.outcome = outcome
        if usage is not None:
            self.tokens_in += int(getattr(usage, "prompt_token_count", None) or 0)
            self.tokens_out += int(getattr(usage, "candidates_token_count", None) or 0)
        if outcome not in RETRYABLE or self.count > self.retries:
            return None
        if self.deadline - self.clock() - self.backoff_s < _MIN_ATTEMPT_S:
            return None
        return self.backoff_s

    def elapsed_ms(self) -> float:
        """Milliseconds since the call started, retries and backoff included."""
        return round((self.clock() - self.started) * 1000, 1)


_TIMEOUT_NAMES = frozenset({"TimeoutError", "TimeoutException", "ServerTimeoutError"})
_REFUSED_NAMES = frozenset({"ConnectError", "ClientConnectorError", "ConnectionError"})
_DROPPED_NAMES = frozenset({"RemoteProtocolError", "ServerDisconnectedError", "ReadError"})
_MALFORMED_NAMES = frozenset({"JSONDecodeError", "UnknownApiResponseError", "ContentTypeError"})


def classify(exc: BaseException) -> str:
    """Map an exception from the SDK or its HTTP library to an :data:`OUTCOMES` value.

    Matching is by class name along the MRO, so httpx, httpx2 and aiohttp need not be
    imported here.
    """
    code = getattr(exc, "code", None)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if "APIError" in names and isinstance(code, int):
        if code == 429:
            return "rate_limited"
        if code == 408:
            return "timeout"
        return "server_error" if code >= 500 else "client_error"
    for outcome, known in (
        ("timeout", _TIMEOUT_NAMES),
        ("refused", _REFUSED_NAMES),
        ("server_error", _DROPPED_NAMES),
        ("malformed", _MALFORMED_NAMES),
    ):
        if names & known:
            return outcome
    return "error"


def answer_text(response: Any) -> str | None:
    """The text of the first candidate (thought parts left out), or None."""
    for candidate in getattr(response, "candidates", None) or []:
        content = getattr(candidate, "content", None)
        parts = getattr(content, "parts", None) or []
        texts = [p.text for p in parts if getattr(p, "text", None) and not p.thought]
        return "".join(texts) if texts else None
    return None


def interpret(response: Any, schema: dict[str, Any] | None) -> tuple[str, Any, str | None]:
    """Return (outcome, data, text) for a response the SDK accepted."""
    text = answer_text(response)
    if text is None or not text.strip():
        return "malformed", None, text
    if schema is None:
        return "ok", None, text
    try:
        data = json.loads(text)
    except ValueError:
        return "malformed", None, text
    if not isinstance(data, dict):
        return "malformed", None, text
    return "ok", data, text


def run_attempts(
    attempts: Attempts, attempt: Callable[[float], Any], schema: dict[str, Any] | None, purpose: str
) -> tuple[Any, str | None]:
    """Call ``attempt(timeout_s)`` (it returns an SDK response) until the policy stops.

    Returns the (data, text) of the last attempt; the outcome and totals are in ``attempts``.
    """
    data: Any = None
    text: str | None = None
    while (timeout := attempts.timeout()) is not None:
        usage = None
        try:
            response = attempt(timeout)
            usage = response.usage_metadata
            outcome, data, text = interpret(response, schema)
        except Exception as exc:  # every failure becomes an outcome, by contract
            outcome, data, text = classify(exc), None, None
            logger.info("gemini %s attempt %d: %s", purpose, attempts.count, outcome)
        pause = attempts.done(outcome, usage)
        if pause is None:
            break
        time.sleep(pause)
    return data, text


async def arun_attempts(
    attempts: Attempts,
    attempt: Callable[[float], Awaitable[Any]],
    schema: dict[str, Any] | None,
    purpose: str,
) -> tuple[Any, str | None]:
    """:func:`run_attempts` for a coroutine ``attempt``; the backoff does not block the loop."""
    data: Any = None
    text: str | None = None
    while (timeout := attempts.timeout()) is not None:
        usage = None
        try:
            response = await attempt(timeout)
            usage = response.usage_metadata
            outcome, data, text = interpret(response, schema)
        except Exception as exc:  # every failure becomes an outcome, by contract
            outcome, data, text = classify(exc), None, None
            logger.info("gemini %s attempt %d: %s", purpose, attempts.count, outcome)
        pause = attempts.done(outcome, usage)
        if pause is None:
            break
        await asyncio.sleep(pause)
    return data, text


# -- voice notes ---------------------------------------------------------------------------

TRANSCRIBE_SYSTEM = (
    "Você recebe a mensagem de voz que um paciente mandou pelo WhatsApp para uma clínica. "
    "Sua tarefa: transcreva exatamente o que é dito, em português, sem resumir, corrigir, "
    "traduzir, responder nem comentar. Responda apenas com o texto falado. "
    "Se não houver fala compreensível, responda apenas [inaudível]."
)
"""The system instruction of a transcription (the audio goes in the user content)."""

TRANSCRIBE_PROMPT = "transcreva este áudio"
"""The text part sent beside the audio."""

NO_SPEECH = "[inaudível]"
"""What the model answers, as instructed, when the audio holds no intelligible speech."""

MAX_AUDIO_BYTES = 10 * 1024 * 1024
"""Larger audio is not sent (Gemini takes at most 20 MB of inline data per request, base64
inflates by a third): the call ends at once with outcome ``client_error``."""

TRANSCRIBE_BUDGET_S = 20.0
"""The default wall-clock budget of one transcription, retry included."""

TRANSCRIBE_TIMEOUT_S = 12.0
"""The floor of one transcription attempt's timeout (an audio takes longer than a text)."""


def audio_mime(mimetype: str) -> str:
    """The media type to declare to Gemini: parameters dropped, ``audio/ogg`` when unknown.

    WAHA announces voice notes as ``audio/ogg; codecs=opus``; Gemini lists bare types.
    """
    bare = mimetype.split(";", 1)[0].strip().lower()
    return bare if "/" in bare else "audio/ogg"


def transcript(text: str | None) -> str | None:
    """The transcribed text, or None when it is empty or the model heard no speech."""
    cleaned = (text or "").strip()
    if not cleaned or cleaned.strip(" .").lower() == NO_SPEECH:
        return None
    return cleaned


__all__ = [
    "MAX_AUDIO_BYTES",
    "NO_SPEECH",
    "OUTCOMES",
    "RETRYABLE",
    "TRANSCRIBE_BUDGET_S",
    "TRANSCRIBE_PROMPT",
    "TRANSCRIBE_SYSTEM",
    "TRANSCRIBE_TIMEOUT_S",
    "Attempts",
    "answer_text",
    "arun_attempts",
    "audio_mime",
    "classify",
    "interpret",
    "run_attempts",
    "transcript",
]
