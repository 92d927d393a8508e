"""Voice notes: GeminiLLM.transcribe with the real google-genai SDK against FakeGemini, and
the runner turning a voice note into a text turn (FakeWaha serves the audio file)."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import base64
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from runner_harness import (  # noqa: F401 - fixtures
    Live,
    base_config,
    data_dir,
    embedder,
    first_contact,
    prebuilt,
    waha,
)

from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.llm import GeminiLLM, LLMConfig
from clinicflow.llm_policy import MAX_AUDIO_BYTES, TRANSCRIBE_SYSTEM
from clinicflow.loader import load_catalog
from clinicflow.runner.app import create_app
from clinicflow.runner.keys import ENGINE
from clinicflow.testing import FakeGemini
from clinicflow.testing.fake_gemini import InlineMedia, estimate_tokens
from clinicflow.testing.fake_waha import FakeWaha

PATIENT = "5511988887777@c.us"
AUDIO = b"OggS\x00\x02" + bytes(range(256)) * 4  # bytes that base64 turns into + and /
SAID = "quero marcar uma consulta"


def _decoded(data: str) -> bytes:
    return base64.b64decode(data.translate(str.maketrans("-_", "+/")))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- GeminiLLM.transcribe -----------------------------------------------------------------


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini.running() as server:
        server.on("transcreva", SAID)
        yield server


@pytest.fixture
async def afake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as server:
        server.on("transcreva", SAID)
        yield server


def _gemini(fake: FakeGemini, **config: Any) -> GeminiLLM:
    return GeminiLLM(LLMConfig(api_key=fake.api_key, base_url=fake.url, **config), backoff_s=0.05)


def test_transcribe_sends_the_audio_inline(fake: FakeGemini) -> None:
    with _gemini(fake) as llm:
        text, call = llm.transcribe(AUDIO, "audio/ogg; codecs=opus")
    assert text == SAID
    assert (call.outcome, call.purpose, call.attempts, call.model) == (
        "ok",
        "transcribe",
        1,
        "gemini-2.5-flash",
    )
    [record] = fake.requests
    assert record.action == "generateContent"
    assert record.headers["x-goog-api-key"] == fake.api_key
    assert record.media == (InlineMedia("audio/ogg", len(AUDIO)),)
    body = record.json
    assert body["systemInstruction"]["parts"] == [{"text": TRANSCRIBE_SYSTEM}]
    [content] = body["contents"]
    assert content["role"] == "user"
    text_part, audio_part = content["parts"]
    assert "transcreva" in text_part["text"]
    blob = audio_part["inlineData"]  # the SDK names the blob's fields in snake_case
    assert blob.get("mimeType", blob.get("mime_type")) == "audio/ogg"
    assert _decoded(blob["data"]) == AUDIO
    assert body["generationConfig"]["temperature"] == 0.0
    assert "responseMimeType" not in body["generationConfig"]  # plain text, not JSON
    assert f"[inlineData audio/ogg {len(AUDIO)} bytes]" in record.prompt
    assert call.tokens_in == estimate_tokens(record.prompt)
    assert call.tokens_out == estimate_tokens(SAID)


async def test_atranscribe_answers_like_transcribe(afake: FakeGemini) -> None:
    async with _gemini(afake) as llm:
        text, call = await llm.atranscribe(AUDIO, "audio/mpeg")
    assert (text, call.outcome, call.purpose) == (SAID, "ok", "transcribe")
    assert afake.requests[0].media == (InlineMedia("audio/mpeg", len(AUDIO)),)


async def test_no_speech_heard_is_none_but_ok(afake: FakeGemini) -> None:
    afake.enqueue("  [inaudível].\n")
    async with _gemini(afake) as llm:
        text, call = await llm.atranscribe(AUDIO, "audio/ogg")
    assert text is None and call.outcome == "ok"


async def test_server_errors_retried_once_then_none(afake: FakeGemini) -> None:
    afake.fail_next(2, status=500)
    async with _gemini(afake) as llm:
        text, call = await llm.atranscribe(AUDIO, "audio/ogg")
    assert text is None
    assert (call.outcome, call.attempts, call.purpose) == ("server_error", 2, "transcribe")
    assert len(afake.requests) == 2


async def test_one_failure_then_the_retry_transcribes(afake: FakeGemini) -> None:
    afake.fail_next(1, status=503)
    async with _gemini(afake) as llm:
        text, call = await llm.atranscribe(AUDIO, "audio/ogg")
    assert (text, call.outcome, call.attempts) == (SAID, "ok", 2)


async def test_hang_past_the_budget_is_a_timeout(afake: FakeGemini) -> None:
    afake.hang_next(1, seconds=10)
    async with _gemini(afake) as llm:
        started = time.monotonic()
        text, call = await llm.atranscribe(AUDIO, "audio/ogg", budget_s=1.0)
        elapsed = time.monotonic() - started
    assert text is None
    assert (call.outcome, call.attempts) == ("timeout", 1)
    assert elapsed < 2.0


def test_sync_hang_past_the_budget_is_a_timeout(fake: FakeGemini) -> None:
    fake.hang_next(1, seconds=10)
    with _gemini(fake) as llm:
        started = time.monotonic()
        text, call = llm.transcribe(AUDIO, "audio/ogg", budget_s=1.2)
        elapsed = time.monotonic() - started
    assert (text, call.outcome) == (None, "timeout")
    assert elapsed < 2.5


async def test_malformed_answers_are_none(afake: FakeGemini) -> None:
    afake.malformed_next(2, kind="body")
    async with _gemini(afake) as llm:
        text, call = await llm.atranscribe(AUDIO, "audio/ogg")
    assert text is None
    assert (call.outcome, call.attempts) == ("malformed", 2)


async def test_refused_connection_is_none() -> None:
    config = LLMConfig(api_key="k", base_url=f"http://127.0.0.1:{_free_port()}")
    async with GeminiLLM(config, backoff_s=0.01) as llm:
        text, call = await llm.atranscribe(AUDIO, "audio/ogg", budget_s=2.0)
    assert (text, call.outcome, call.attempts) == (None, "refused", 2)


@pytest.mark.parametrize("size", [0, MAX_AUDIO_BYTES + 1])
def test_empty_or_oversized_audio_is_not_sent(fake: FakeGemini, size: int) -> None:
    with _gemini(fake) as llm:
        text, call = llm.transcribe(b"\x00" * size, "audio/ogg")
    assert text is None
    assert (call.outcome, call.attempts, call.purpose) == ("client_error", 0, "transcribe")
    assert fake.requests == []


async def test_fake_rejects_inline_data_that_is_not_base64(afake: FakeGemini) -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "a/b", "data": "*"}}]}]
    }
    url = f"{afake.url}/v1beta/models/m:generateContent"
    async with (
        aiohttp.ClientSession() as http,
        http.post(url, json=body, headers={"x-goog-api-key": str(afake.api_key)}) as r,
    ):
        answer = await r.json()
    assert r.status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT"
    assert afake.requests[0].media == (InlineMedia("a/b", -1),)


# -- through the runner -------------------------------------------------------------------

MakeLive = Callable[..., Awaitable[Live]]


@pytest.fixture
async def make_live(
    waha: FakeWaha, data_dir: Path, embedder: Any, afake: FakeGemini
) -> AsyncIterator[MakeLive]:
    """A runner whose engine has a GeminiLLM on ``afake`` (``gemini=False``: no LLM)."""
    opened: list[tuple[TestServer, aiohttp.ClientSession, Engine, GeminiLLM | None]] = []

    async def make(*, gemini: bool = True) -> Live:
        llm = _gemini(afake) if gemini else None
        engine = Engine(
            load_catalog(), data_dir=data_dir, embedder=embedder, clock=ManualClock(), llm=llm
        )
        server = TestServer(create_app(base_config(waha, data_dir), engine=engine))
        await server.start_server()
        http = aiohttp.ClientSession()
        opened.append((server, http, engine, llm))
        return Live(waha, server.app, server, http, engine)

    yield make
    for server, http, engine, llm in opened:
        await http.close()
        await server.close()
        if llm is not None:
            await llm.aclose()
        engine.close_resources()


def _transcriptions(live: Live) -> list[dict[str, Any]]:
    return live.engine.store.query(
        "SELECT source, purpose, model, outcome, tokens_in, tokens_out FROM understanding "
        "WHERE purpose = 'transcribe'"
    )


async def test_voice_note_transcribed_and_handled_as_text(
    make_live: MakeLive, afake: FakeGemini
) -> None:
    live = await make_live()
    w = live.waha
    assert await w.emit(live.hook, "message", w.voice_message(PATIENT, AUDIO), retries=0) == [200]
    await live.settle()
    assert [t["text"] for t in live.turns(PATIENT)] == [SAID]
    clinic = live.engine.catalog.clinic
    assert live.sent_to(PATIENT) == first_contact(live.engine, clinic.text("handoff"))
    [handoff] = live.engine.store.query("SELECT reason FROM handoffs WHERE chat_id = ?", (PATIENT,))
    assert handoff["reason"] == "schedule"
    [asked] = [r for r in afake.requests if r.media]
    assert asked.media == (InlineMedia("audio/ogg", len(AUDIO)),)
    [row] = _transcriptions(live)
    assert row["source"] == "llm" and row["outcome"] == "ok" and row["tokens_out"] > 0
    assert row["model"] == "gemini-2.5-flash"
    assert live.runtime.metrics.value("llm_calls") >= 1


async def test_failed_transcription_acknowledged(make_live: MakeLive, afake: FakeGemini) -> None:
    afake.fail_next(2, status=500)
    live = await make_live()
    w = live.waha
    await w.emit(live.hook, "message", w.voice_message(PATIENT, AUDIO), retries=0)
    await live.settle()
    assert live.sent_to(PATIENT) == first_contact(
        live.engine, live.engine.catalog.clinic.text("audio_received")
    )
    [row] = _transcriptions(live)
    assert row["outcome"] == "server_error"


async def test_expired_voice_note_acknowledged_without_asking_gemini(
    make_live: MakeLive, afake: FakeGemini
) -> None:
    live = await make_live()
    w = live.waha
    ack = live.engine.catalog.clinic.text("audio_received")
    # WAHA could not fetch it: no media.url at all.
    await w.emit(live.hook, "message", w.voice_message(PATIENT, downloaded=False), retries=0)
    await live.settle()
    assert live.sent_to(PATIENT) == first_contact(live.engine, ack)
    # Announced, then gone from WAHA's file store before we download it: 404.
    other = "5511988886666@c.us"
    expired = w.voice_message(other, AUDIO)
    w.files.clear()
    await w.emit(live.hook, "message", expired, retries=0)
    await live.settle()
    assert live.sent_to(other) == first_contact(live.engine, ack)
    # Nobody heard either: a person will (the hand-off says why).
    for chat in (PATIENT, other):
        state = live.engine.store.conversation(chat)
        assert state is not None and state["status"] == "waiting_human"
        assert state["handoff_reason"] == "voice_note"
    gone = [c for c in w.calls if c.path.startswith("/api/files/")]
    assert [c.status for c in gone] == [404]
    assert not any(r.media for r in afake.requests)
    assert _transcriptions(live) == []


async def test_without_gemini_a_voice_note_is_acknowledged(
    make_live: MakeLive, afake: FakeGemini
) -> None:
    live = await make_live(gemini=False)
    w = live.waha
    await w.emit(live.hook, "message", w.voice_message(PATIENT, AUDIO), retries=0)
    await live.settle()
    assert live.sent_to(PATIENT) == first_contact(
        live.engine, live.engine.catalog.clinic.text("audio_received")
    )
    assert afake.requests == []
    assert not [c for c in w.calls if c.path.startswith("/api/files/")]  # nothing downloaded


async def test_runner_builds_the_transcriber_from_the_configured_key(
    waha: FakeWaha, data_dir: Path, afake: FakeGemini
) -> None:
    gemini = LLMConfig(api_key=afake.api_key, base_url=afake.url)
    # A weekday at 10:00 in São Paulo: the staff notice goes out at once whatever the real
    # hour (the clock reaches the engine the runner builds).
    clock = ManualClock(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))
    server = TestServer(create_app(base_config(waha, data_dir, llm=gemini), clock=clock))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            live = Live(waha, server.app, server, http, server.app[ENGINE])
        assert isinstance(live.engine.llm, GeminiLLM)
        assert live.engine.clock is clock
        await waha.emit(live.hook, "message", waha.voice_message(PATIENT, AUDIO), retries=0)
        await live.settle(timeout=90)  # a cold runner: the first turn loads the embedding model
        assert [t["text"] for t in live.turns(PATIENT)] == [SAID]
        assert [r["outcome"] for r in _transcriptions(live)] == ["ok"]
    finally:
        await server.close()  # the runner closes the engine and the GeminiLLM it built
