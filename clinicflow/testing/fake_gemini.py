"""A fake Gemini API server for tests: the real REST wire protocol, on 127.0.0.1.

:class:`FakeGemini` is a small aiohttp server that answers the requests the real
``google-genai`` SDK sends, so tests exercise the real client (serialisation, error mapping,
timeouts) with no network and no API key. Point the SDK, or clinicflow, at ``fake.url``::

    from google import genai
    from google.genai import types
    from clinicflow.testing import FakeGemini

    async def test_my_script() -> None:
        async with FakeGemini() as fake:
            fake.on(r"quero marcar", {"intent": "book", "confidence": 0.9})
            client = genai.Client(
                api_key=fake.api_key, http_options=types.HttpOptions(base_url=fake.url)
            )
            ...

From synchronous code (a plain test, the CLI, the engine's sync API) start it in a
background thread with its own event loop::

    with FakeGemini.running() as fake:
        fake.enqueue("Olá!")
        ...  # e.g. LLMConfig(api_key=fake.api_key, base_url=fake.url)

What it speaks (any API version prefix, ``/v1/...``, ``/v1beta/...``):

- ``POST /{ver}/models/{model}:generateContent`` (and ``:streamGenerateContent``, one SSE
  chunk), answering ``{"candidates": [...], "usageMetadata": {...}, "modelVersion": model}``;
  token counts are a deterministic estimate, ``len(text) // 4 + 1``.
- ``:embedContent``, ``:batchEmbedContents`` (deterministic unit vectors) and ``:countTokens``.
- ``x-goog-api-key`` is checked: missing gives 403 ``PERMISSION_DENIED``, wrong gives 400
  ``INVALID_ARGUMENT``, in Google's error body ``{"error": {"code", "message", "status"}}``.
  Pass ``api_key=None`` to accept any key.

Where answers come from, first match wins:

1. the queue, ``fake.enqueue(reply, ...)``, consumed one per request;
2. rules, ``fake.on(pattern, reply)``, searched (``re.search``) in the prompt text, which is
   the system instruction and every text part of ``contents`` joined by newlines, an inline
   file (``inlineData``, e.g. a voice note to transcribe) standing as a line
   ``[inlineData audio/ogg 1234 bytes]``;
3. ``fake.default_reply``.

A reply is a ``str`` (sent as is), a ``dict``/``list`` (JSON-encoded into the text part), or a
callable that receives the request JSON and returns one of those.

Failures, consumed in the order they were asked for, one per request:
``fake.fail_next(n, status=429)`` (429 ``RESOURCE_EXHAUSTED``, 500 ``INTERNAL``, 503
``UNAVAILABLE``, ...), ``fake.hang_next(n, seconds)`` (waits, then answers normally: past the
client timeout the client gives up first), ``fake.malformed_next(n, kind="body")`` (an invalid
JSON body; ``kind="text"`` sends a valid response whose text is not JSON).

Every request is recorded in ``fake.requests`` as a :class:`GeminiRequest`; its ``media``
lists the inline files (media type, decoded size). Inline data that is not valid base64 gets
Google's 400 ``INVALID_ARGUMENT``, as the real API answers.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import json
import math
import re
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

ReplyValue = str | dict[str, Any] | list[Any]
Reply = ReplyValue | Callable[[dict[str, Any]], ReplyValue]

GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_PATH = re.compile(r"^/(?P<ver>[^/]+)/models/(?P<model>[^/:]+):(?P<action>[A-Za-z]+)$")
_EMBED_DIM = 768
_URLSAFE = str.maketrans("-_", "+/")


@dataclass(frozen=True)
class InlineMedia:
    """An ``inlineData`` part of a request: its declared type and decoded size (-1: not
    valid base64)."""

    mime_type: str
    size: int


@dataclass(frozen=True)
class GeminiRequest:
    """One request the fake received."""

    method: str
    path: str
    api_version: str
    model: str
    action: str
    headers: dict[str, str]
    json: Any
    prompt: str
    media: tuple[InlineMedia, ...] = ()


@dataclass(frozen=True)
class _Fault:
    kind: Literal["fail", "hang", "malformed"]
    status: int = 500
    seconds: float = 0.0
    malformed: Literal["body", "text"] = "body"


@dataclass
class _Rule:
    pattern: re.Pattern[str]
    reply: Reply


def _parts(body: Any) -> list[dict[str, Any]]:
    """Every part of a generateContent body: system instruction, then contents."""
    if not isinstance(body, dict):
        return []
    contents = body.get("contents") or []
    if isinstance(contents, dict):
        contents = [contents]
    found: list[dict[str, Any]] = []
    for content in [body.get("systemInstruction"), *contents]:
        if isinstance(content, dict):
            found += [p for p in content.get("parts") or [] if isinstance(p, dict)]
    return found


def _inline(part: dict[str, Any]) -> InlineMedia | None:
    # Proto JSON: camelCase or the proto's snake_case names (google-genai sends
    # ``inlineData: {"data", "mime_type"}``), standard or URL-safe base64.
    blob = part.get("inlineData", part.get("inline_data"))
    if not isinstance(blob, dict):
        return None
    data = str(blob.get("data") or "").translate(_URLSAFE)
    try:
        size = len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        size = -1
    return InlineMedia(str(blob.get("mimeType", blob.get("mime_type")) or ""), size)


def inline_media(body: Any) -> tuple[InlineMedia, ...]:
    """The inline files (``inlineData`` parts) of a generateContent body, in order."""
    return tuple(m for m in map(_inline, _parts(body)) if m is not None)


def prompt_text(body: Any) -> str:
    """Return the text of a generateContent body: system instruction, then contents.

    Text parts as they are, inline files as ``[inlineData <mime type> <size> bytes]``.
    """
    texts: list[str] = []
    for part in _parts(body):
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif (media := _inline(part)) is not None:
            texts.append(f"[inlineData {media.mime_type} {media.size} bytes]")
    return "\n".join(texts)


def estimate_tokens(text: str) -> int:
    """The fake's deterministic token estimate: ``len(text) // 4 + 1``."""
    return len(text) // 4 + 1


def google_error(status: int, message: str) -> web.Response:
    """A response with Google's error body for ``status``."""
    body = {
        "error": {
            "code": status,
            "message": message,
            "status": GOOGLE_STATUS.get(status, "UNKNOWN"),
        }
    }
    return web.json_response(body, status=status)


def _embedding(text: str, dim: int) -> list[float]:
    seed = hashlib.sha256(text.encode()).digest()
    raw = [(seed[i % len(seed)] ^ (i * 31 % 251)) / 255.0 - 0.5 for i in range(dim)]
    norm = math.sqrt(sum(v * v for v in raw)) or 1.0
    return [v / norm for v in raw]


class FakeGemini:
    """A local server speaking the Gemini REST API; see the module docstring.

    Args:
        api_key: the key requests must carry in ``x-goog-api-key``; ``None`` accepts any.
        default_reply: the answer when neither the queue nor a rule applies.
    """

    def __init__(self, *, api_key: str | None = "fake-gemini-key", default_reply: Reply = "{}"):
        self.api_key = api_key
        self.default_reply: Reply = default_reply
        self.requests: list[GeminiRequest] = []
        self._rules: list[_Rule] = []
        self._queue: deque[Reply] = deque()
        self._faults: deque[_Fault] = deque()
        self._lock = threading.Lock()
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._port = 0

    # -- configuration (thread-safe: tests may call these from another thread) --

    def on(self, pattern: str | re.Pattern[str], reply: Reply) -> None:
        """Answer ``reply`` when ``pattern`` is found (``re.search``) in the prompt text."""
        compiled = re.compile(pattern) if isinstance(pattern, str) else pattern
        with self._lock:
            self._rules.append(_Rule(compiled, reply))

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies; each request consumes one before rules are consulted."""
        with self._lock:
            self._queue.extend(replies)

    def fail_next(self, n: int = 1, status: int = 500) -> None:
        """Make the next ``n`` requests fail with ``status`` and Google's error body."""
        with self._lock:
            self._faults.extend(_Fault("fail", status=status) for _ in range(n))

    def hang_next(self, n: int = 1, seconds: float = 30.0) -> None:
        """Make the next ``n`` requests wait ``seconds`` before answering."""
        with self._lock:
            self._faults.extend(_Fault("hang", seconds=seconds) for _ in range(n))

    def malformed_next(self, n: int = 1, kind: Literal["body", "text"] = "body") -> None:
        """Make the next ``n`` answers malformed: invalid JSON body, or non-JSON text."""
        with self._lock:
            self._faults.extend(_Fault("malformed", malformed=kind) for _ in range(n))

    def reset(self) -> None:
        """Forget rules, queue, pending faults and recorded requests."""
        with self._lock:
            self._rules.clear()
            self._queue.clear()
            self._faults.clear()
            self.requests.clear()

    # -- lifecycle --

    @property
    def url(self) -> str:
        """The base URL to give the SDK (``HttpOptions(base_url=...)``)."""
        if self._runner is None:
            raise RuntimeError("FakeGemini is not started")
        return f"http://127.0.0.1:{self._port}"

    async def start(self) -> None:
        """Start listening on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._closing = asyncio.Event()
        runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner

    async def close(self) -> None:
        """Stop the server; requests still hanging are released at once."""
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeGemini:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @classmethod
    @contextlib.contextmanager
    def running(cls, **kwargs: Any) -> Iterator[FakeGemini]:
        """Run a fake in a background thread with its own event loop, for sync code."""
        fake = cls(**kwargs)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="FakeGemini", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(fake.start(), loop).result(timeout=10)
            yield fake
        finally:
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(fake.close(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # -- the server --

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        match = _PATH.match(request.path)
        raw = await request.read()
        try:
            body: Any = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        record = GeminiRequest(
            method=request.method,
            path=request.path_qs,
            api_version=match["ver"] if match else "",
            model=match["model"] if match else "",
            action=match["action"] if match else "",
            headers=dict(request.headers),
            json=body,
            prompt=prompt_text(body),
            media=inline_media(body),
        )
        with self._lock:
            self.requests.append(record)
        if match is None or request.method != "POST":
            return google_error(404, f"Method not found: {request.method} {request.path}")
        denied = self._check_key(request.headers.get("x-goog-api-key"))
        if denied is not None:
            return denied
        if not isinstance(body, dict):
            return google_error(400, "Invalid JSON payload received.")
        if any(m.size < 0 for m in record.media):
            return google_error(400, "Invalid value at 'inline_data.data': Base64 decoding failed.")
        with self._lock:
            fault = self._faults.popleft() if self._faults else None
        if fault is not None and fault.kind == "fail":
            return google_error(fault.status, f"Fake failure {fault.status}.")
        if fault is not None and fault.kind == "hang":
            assert self._closing is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.seconds)
            if request.transport is None or request.transport.is_closing():
                # The client gave up: leave the queue for the next request.
                return web.Response(status=499)
        action = record.action
        if action in ("generateContent", "streamGenerateContent"):
            return await self._generate(request, record, fault)
        if action in ("embedContent", "batchEmbedContents"):
            return self._embed(body, batch=action == "batchEmbedContents")
        if action == "countTokens":
            return web.json_response({"totalTokens": estimate_tokens(record.prompt)})
        return google_error(404, f"Unknown action :{action}")

    def _check_key(self, given: str | None) -> web.Response | None:
        if self.api_key is None:
            return None
        if not given:
            return google_error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity.",
            )
        if given != self.api_key:
            return google_error(400, "API key not valid. Please pass a valid API key.")
        return None

    def _answer(self, body: dict[str, Any], prompt: str) -> str:
        with self._lock:
            reply: Reply | None = self._queue.popleft() if self._queue else None
            if reply is None:
                rule = next((r for r in self._rules if r.pattern.search(prompt)), None)
                reply = rule.reply if rule else self.default_reply
        value = reply(body) if callable(reply) else reply
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    async def _generate(
        self, request: web.Request, record: GeminiRequest, fault: _Fault | None
    ) -> web.StreamResponse:
        if fault is not None and fault.kind == "malformed" and fault.malformed == "body":
            return web.Response(
                status=200, text='{"candidates": [{"content": ', content_type="application/json"
            )
        if fault is not None and fault.kind == "malformed":
            text = "Claro! Aqui está: {intent: book"  # a model answering prose, not JSON
        else:
            text = self._answer(record.json, record.prompt)
        tokens_in, tokens_out = estimate_tokens(record.prompt), estimate_tokens(text)
        payload = {
            "candidates": [
                {
                    "content": {"role": "model", "parts": [{"text": text}]},
                    "finishReason": "STOP",
                    "index": 0,
                }
            ],
            "usageMetadata": {
                "promptTokenCount": tokens_in,
                "candidatesTokenCount": tokens_out,
                "totalTokenCount": tokens_in + tokens_out,
            },
            "modelVersion": record.model,
        }
        if record.action == "generateContent":
            return web.json_response(payload)
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await stream.prepare(request)
        await stream.write(f"data: {json.dumps(payload)}\r\n\r\n".encode())
        await stream.write_eof()
        return stream

    def _embed(self, body: dict[str, Any], *, batch: bool) -> web.Response:
        items = (body.get("requests") or []) if batch else [body]
        out = []
        for item in items:
            content = item.get("content") if isinstance(item, dict) else None
            dim = item.get("outputDimensionality") if isinstance(item, dict) else None
            text = prompt_text({"contents": [content]}) if content else ""
            out.append({"values": _embedding(text, int(dim or _EMBED_DIM))})
        if batch:
            return web.json_response({"embeddings": out})
        return web.json_response({"embedding": out[0] if out else {"values": []}})


__all__ = [
    "FakeGemini",
    "GeminiRequest",
    "InlineMedia",
    "estimate_tokens",
    "google_error",
    "inline_media",
    "prompt_text",
]
