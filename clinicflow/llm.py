"""The one seam between clinicflow and a language model (Gemini through ``google-genai``).

The engine asks an :class:`LLM` for one answer at a time and gets an :class:`LLMReply` back,
never an exception for a service failure: 429s, 5xx, timeouts, refused connections and
malformed answers become a reply with ``data=None`` and the outcome recorded in
``reply.call`` (an :class:`LLMCall`, what the LLM calls table stores). The turn then goes on
with the local result.

:class:`GeminiLLM` drives the real SDK. Its policy: per attempt, a timeout of
``min(timeout_s, what is left of the budget)``; at most ``retries`` retries (default one), after
a short backoff, only for failures worth retrying and only while the budget allows; the SDK's
own retries are switched off so that it never sleeps behind our back. ``google.genai`` is
imported on first use only, so ``import clinicflow.llm`` stays cheap.

:meth:`GeminiLLM.transcribe` (and ``atranscribe``) turns a voice note into text under the same
policy; the engine never calls it, the runner does (see ``clinicflow.runner.app``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from clinicflow.errors import LLMError
from clinicflow.llm_policy import (
    EPSILON_S,
    MAX_AUDIO_BYTES,
    OUTCOMES,
    RETRYABLE,
    TRANSCRIBE_BUDGET_S,
    TRANSCRIBE_PROMPT,
    TRANSCRIBE_SYSTEM,
    TRANSCRIBE_TIMEOUT_S,
    Attempts,
    arun_attempts,
    audio_mime,
    classify,
    run_attempts,
    transcript,
)

if TYPE_CHECKING:
    from aiohttp import ClientSession as Session
    from google import genai

logger = logging.getLogger(__name__)
Request = Callable[[float], dict[str, Any]]  # attempt timeout -> generate_content kwargs


@dataclass(frozen=True)
class LLMConfig:
    """How to reach Gemini. ``api_key=None`` means no LLM: the engine stays local."""

    api_key: str | None
    model: str = "gemini-2.5-flash"
    base_url: str | None = None
    timeout_s: float = 4.0
    turn_budget_s: float = 6.0
    retries: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LLMConfig:
        """Read the configuration from environment variables.

        ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``), ``CLINICFLOW_GEMINI_MODEL``,
        ``CLINICFLOW_GEMINI_BASE_URL`` and ``CLINICFLOW_GEMINI_TIMEOUT`` (seconds).

        Raises:
            LLMError: ``CLINICFLOW_GEMINI_TIMEOUT`` is not a positive number.
        """
        env = os.environ if environ is None else environ
        key = (env.get("GEMINI_API_KEY") or env.get("GOOGLE_API_KEY") or "").strip()
        model = (env.get("CLINICFLOW_GEMINI_MODEL") or "").strip() or cls.model
        base_url = (env.get("CLINICFLOW_GEMINI_BASE_URL") or "").strip() or None
        timeout_s = cls.timeout_s
        raw_timeout = (env.get("CLINICFLOW_GEMINI_TIMEOUT") or "").strip()
        if raw_timeout:
            try:
                timeout_s = float(raw_timeout)
            except ValueError:
                timeout_s = -1.0
            if not timeout_s > 0:
                raise LLMError(
                    f"CLINICFLOW_GEMINI_TIMEOUT must be a positive number of seconds, "
                    f"not {raw_timeout!r}",
                    outcome="error",
                )
        return cls(api_key=key or None, model=model, base_url=base_url, timeout_s=timeout_s)


@dataclass(frozen=True)
class LLMCall:
    """What one :meth:`LLM.generate` cost and how it ended (one row of the LLM calls table).

    ``tokens_in``/``tokens_out`` add up every attempt's ``usageMetadata``; ``ms`` is the
    wall-clock time of the whole call, retries and backoff included.
    """

    model: str
    outcome: str
    tokens_in: int
    tokens_out: int
    ms: float
    attempts: int
    purpose: str


@dataclass(frozen=True)
class LLMReply:
    """An answer: ``data`` is the JSON object when a schema was asked for and the answer parsed,
    ``text`` the raw text; both ``None`` when the call failed (see ``call.outcome``)."""

    data: dict[str, Any] | None
    text: str | None
    call: LLMCall

    @property
    def ok(self) -> bool:
        """True when the model answered usably."""
        return self.call.outcome == "ok"


class LLM(Protocol):
    """A language model the engine can ask; implementations never raise for service failures."""

    model: str

    def generate(
        self,
        *,
        purpose: str,
        system: str,
        prompt: str,
        schema: dict[str, Any] | None = None,
        budget_s: float | None = None,
    ) -> LLMReply:
        """Ask once (with the implementation's retry policy) within ``budget_s`` seconds.

        Args:
            purpose: a short label stored with the call (``"understand"``, ``"brief"``, ...).
            system: the system instruction.
            prompt: the user content; patient text goes here, as data.
            schema: a response schema (Gemini's OpenAPI subset: ``{"type": "OBJECT",
                "properties": {...}, "required": [...]}``); asks for a JSON object.
            budget_s: the wall-clock limit for the whole call, retries included.
        """
        ...

    async def agenerate(
        self,
        *,
        purpose: str,
        system: str,
        prompt: str,
        schema: dict[str, Any] | None = None,
        budget_s: float | None = None,
    ) -> LLMReply:
        """The same as :meth:`generate`, without blocking the event loop."""
        ...


class GeminiLLM:
    """:class:`LLM` backed by Gemini through the real ``google-genai`` client.

    The SDK client is created on first use (``google.genai`` is imported then). Close it
    when done: ``close()`` (or ``with``) after :meth:`generate`, ``await aclose()`` (or
    ``async with``) after :meth:`agenerate`. :meth:`agenerate` keeps one SDK client per event
    loop and opens a fresh connection per request, so a loop that ends without ``aclose()``
    (``asyncio.run`` per turn) leaves no socket open. :meth:`generate` blocks: do not call it
    on a running event loop.

    Args:
        config: key, model, base URL, timeouts; ``config.api_key`` must be set.
        backoff_s: the pause before the retry.
        clock: a monotonic clock in seconds (a seam for tests).
    """

    def __init__(
        self,
        config: LLMConfig,
        *,
        backoff_s: float = 0.3,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not config.api_key:
            raise LLMError("GeminiLLM needs an API key (GEMINI_API_KEY)", outcome="client_error")
        self.config = config
        self.model = config.model
        self.backoff_s = backoff_s
        self._clock = clock
        self._client: genai.Client | None = None
        # One SDK client (built in a thread) and aiohttp session per event loop: sessions
        # cannot cross loops.
        self._aio: dict[asyncio.AbstractEventLoop, tuple[asyncio.Task[genai.Client], Session]]
        self._aio = {}

    def _attempts(self, budget_s: float | None, timeout_s: float | None = None) -> Attempts:
        return Attempts(
            timeout_s=timeout_s or self.config.timeout_s,
            retries=self.config.retries,
            budget_s=self.config.turn_budget_s if budget_s is None else budget_s,
            backoff_s=self.backoff_s,
            clock=self._clock,
        )

    def _new_client(self, session: Session | None = None) -> genai.Client:
        from google import genai
        from google.genai import types

        options = types.HttpOptions(
            base_url=self.config.base_url,
            timeout=max(1, int(self.config.timeout_s * 1000)),
            # Set explicitly: with retry_options unset the async client sleeps 1-10 s and
            # retries on a refused connection. attempts=1 means no SDK retries at all.
            retry_options=types.HttpRetryOptions(attempts=1),
            aiohttp_client=session,
        )
        return genai.Client(api_key=self.config.api_key, http_options=options)

    def _request(
        self,
        system: str,
        contents: Any,
        schema: dict[str, Any] | None,
        timeout_s: float,
        temperature: float = 0.1,
    ) -> dict[str, Any]:
        from google.genai import types

        config = types.GenerateContentConfig(
            system_instruction=system or None,
            temperature=temperature,
            response_mime_type="application/json" if schema is not None else None,
            response_schema=schema,
            http_options=types.HttpOptions(timeout=max(1, int(timeout_s * 1000))),
        )
        return {"model": self.model, "contents": contents, "config": config}

    def generate(
        self,
        *,
        purpose: str,
        system: str,
        prompt: str,
        schema: dict[str, Any] | None = None,
        budget_s: float | None = None,
    ) -> LLMReply:
        """See :meth:`LLM.generate`. Never raises for service failures."""
        request = functools.partial(self._request, system, prompt, schema)
        return self._run(purpose, self._attempts(budget_s), request, schema)

    async def agenerate(
        self,
        *,
        purpose: str,
        system: str,
        prompt: str,
        schema: dict[str, Any] | None = None,
        budget_s: float | None = None,
    ) -> LLMReply:
        """See :meth:`LLM.agenerate`. Never raises for service failures."""
        request = functools.partial(self._request, system, prompt, schema)
        return await self._arun(purpose, self._attempts(budget_s), request, schema)

    def transcribe(
        self, audio: bytes, mimetype: str, *, budget_s: float | None = None
    ) -> tuple[str | None, LLMCall]:
        """Transcribe a voice note (purpose ``"transcribe"``); blocks, like :meth:`generate`.

        The audio goes inline, declared as ``mimetype`` without parameters. Returns the text
        (None when the call failed or no speech was heard) and the call's record. Never raises
        for service failures; empty audio or audio over ``MAX_AUDIO_BYTES`` (10 MB) is not
        sent (outcome ``client_error``). ``budget_s`` defaults to 20 s, the retry included.
        """
        plan = self._transcription(audio, mimetype, budget_s)
        if isinstance(plan, LLMCall):
            return None, plan
        reply = self._run("transcribe", *plan, None)
        return transcript(reply.text), reply.call

    async def atranscribe(
        self, audio: bytes, mimetype: str, *, budget_s: float | None = None
    ) -> tuple[str | None, LLMCall]:
        """:meth:`transcribe` without blocking the event loop."""
        plan = self._transcription(audio, mimetype, budget_s)
        if isinstance(plan, LLMCall):
            return None, plan
        reply = await self._arun("transcribe", *plan, None)
        return transcript(reply.text), reply.call

    def _transcription(
        self, audio: bytes, mimetype: str, budget_s: float | None
    ) -> tuple[Attempts, Request] | LLMCall:
        if not 0 < len(audio) <= MAX_AUDIO_BYTES:
            logger.info("gemini transcribe: audio of %d bytes not sent", len(audio))
            return LLMCall(self.model, "client_error", 0, 0, 0.0, 0, "transcribe")
        budget = TRANSCRIBE_BUDGET_S if budget_s is None else budget_s
        attempts = self._attempts(budget, max(self.config.timeout_s, TRANSCRIBE_TIMEOUT_S))

        def request(timeout_s: float) -> dict[str, Any]:
            from google.genai import types  # imported by the client already

            contents = [
                types.Part.from_text(text=TRANSCRIBE_PROMPT),
                types.Part.from_bytes(data=audio, mime_type=audio_mime(mimetype)),
            ]
            return self._request(TRANSCRIBE_SYSTEM, contents, None, timeout_s, temperature=0.0)

        return attempts, request

    def _run(
        self, purpose: str, attempts: Attempts, request: Request, schema: dict[str, Any] | None
    ) -> LLMReply:
        def attempt(timeout_s: float) -> Any:
            if self._client is None:
                self._client = self._new_client()
            return self._client.models.generate_content(**request(timeout_s))

        data, text = run_attempts(attempts, attempt, schema, purpose)
        return self._reply(attempts, purpose, data, text)

    async def _arun(
        self, purpose: str, attempts: Attempts, request: Request, schema: dict[str, Any] | None
    ) -> LLMReply:
        async def attempt(timeout_s: float) -> Any:
            client = await self._async_client()
            # The SDK's aiohttp timeout is total already; this guards the budget anyway.
            async with asyncio.timeout(timeout_s + EPSILON_S):
                return await client.aio.models.generate_content(**request(timeout_s))

        data, text = await arun_attempts(attempts, attempt, schema, purpose)
        return self._reply(attempts, purpose, data, text)

    def _reply(self, attempts: Attempts, purpose: str, data: Any, text: str | None) -> LLMReply:
        call = LLMCall(
            model=self.model,
            outcome=attempts.outcome,
            tokens_in=attempts.tokens_in,
            tokens_out=attempts.tokens_out,
            ms=attempts.elapsed_ms(),
            attempts=attempts.count,
            purpose=purpose,
        )
        if call.outcome != "ok":
            return LLMReply(data=None, text=None, call=call)
        return LLMReply(data=data, text=text, call=call)

    async def _async_client(self) -> genai.Client:
        import aiohttp

        loop = asyncio.get_running_loop()
        self._drop_stale_loops()
        if loop not in self._aio:
            # force_close: no idle socket outlives a call, so a loop that ends without
            # aclose() (asyncio.run per turn) leaks nothing. It costs a new connection per
            # call, small beside a model call. Building the SDK client (import ~350 ms, then
            # ~70 ms) happens in a thread so that the loop keeps serving meanwhile.
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True))
            task = loop.create_task(asyncio.to_thread(self._new_client, session))
            self._aio[loop] = (task, session)
        return await asyncio.shield(self._aio[loop][0])

    def _drop_stale_loops(self) -> None:
        for stale in [loop for loop in self._aio if loop.is_closed()]:
            _task, session = self._aio.pop(stale)
            session.detach()  # its loop is gone: nothing left to await, no socket left open

    def close(self) -> None:
        """Close the synchronous client (the one :meth:`generate` uses)."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close every client and HTTP session, the running event loop's included."""
        self.close()
        self._drop_stale_loops()
        current = asyncio.get_running_loop()
        for loop, (task, session) in list(self._aio.items()):
            if loop is current:
                with contextlib.suppress(Exception):
                    client = await task
                    await client.aio.aclose()
                    client.close()
                await session.close()
            else:  # another live loop (another thread): close it there
                asyncio.run_coroutine_threadsafe(session.close(), loop)
        self._aio.clear()

    def __enter__(self) -> GeminiLLM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> GeminiLLM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def llm_from_config(config: LLMConfig) -> LLM | None:
    """A :class:`GeminiLLM` for ``config``, or None when no API key is configured."""
    if not config.api_key:
        return None
    return GeminiLLM(config)


__all__ = [
    "LLM",
    "OUTCOMES",
    "RETRYABLE",
    "GeminiLLM",
    "LLMCall",
    "LLMConfig",
    "LLMReply",
    "classify",
    "llm_from_config",
]
