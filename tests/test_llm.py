"""GeminiLLM with the real google-genai SDK against FakeGemini: answers, failures, budget."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from clinicflow.errors import LLMError
from clinicflow.llm import GeminiLLM, LLMConfig, llm_from_config
from clinicflow.testing import FakeGemini
from clinicflow.testing.fake_gemini import estimate_tokens

SCHEMA: dict[str, Any] = {
    "type": "OBJECT",
    "properties": {
        "intent": {"type": "STRING", "enum": ["book", "faq", "human"]},
        "confidence": {"type": "NUMBER"},
    },
    "required": ["intent", "confidence"],
}
SYSTEM = "Você classifica mensagens de pacientes."
ASK: dict[str, Any] = {"purpose": "understand", "system": SYSTEM, "schema": SCHEMA}


@pytest.fixture
def fake() -> Iterator[FakeGemini]:
    with FakeGemini.running() as server:
        server.on("marcar", {"intent": "book", "confidence": 0.9})
        yield server


@pytest.fixture
def llm(fake: FakeGemini) -> Iterator[GeminiLLM]:
    with GeminiLLM(LLMConfig(api_key=fake.api_key, base_url=fake.url)) as gemini:
        yield gemini


@pytest.fixture
async def afake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as server:
        server.on("marcar", {"intent": "book", "confidence": 0.9})
        yield server


def free_port() -> int:
    """A port with nothing listening on it (bound, read, released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_ok_json_answer_is_parsed_with_usage(fake: FakeGemini, llm: GeminiLLM) -> None:
    reply = llm.generate(prompt="quero marcar uma consulta", **ASK)
    assert reply.ok
    assert reply.data == {"intent": "book", "confidence": 0.9}
    assert reply.text == json.dumps(reply.data)
    call = reply.call
    assert (call.model, call.outcome, call.attempts, call.purpose) == (
        "gemini-2.5-flash",
        "ok",
        1,
        "understand",
    )
    assert call.tokens_in == estimate_tokens(f"{SYSTEM}\nquero marcar uma consulta")
    assert call.tokens_out == estimate_tokens(reply.text)
    assert call.ms > 0


def test_request_carries_key_schema_and_system(fake: FakeGemini, llm: GeminiLLM) -> None:
    llm.generate(prompt="quero marcar", **ASK)
    [record] = fake.requests
    assert record.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert record.headers["x-goog-api-key"] == fake.api_key
    config = record.json["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"]["type"] == "OBJECT"
    assert config["responseSchema"]["required"] == ["intent", "confidence"]
    assert config["temperature"] == pytest.approx(0.1)
    assert record.json["systemInstruction"]["parts"] == [{"text": SYSTEM}]
    assert record.prompt == f"{SYSTEM}\nquero marcar"


def test_without_schema_the_answer_is_text(fake: FakeGemini, llm: GeminiLLM) -> None:
    fake.enqueue("A clínica abre às 8h.")
    reply = llm.generate(purpose="answer", system=SYSTEM, prompt="que horas abre?")
    assert (reply.ok, reply.data, reply.text) == (True, None, "A clínica abre às 8h.")
    assert "responseMimeType" not in fake.requests[0].json.get("generationConfig", {})


def test_rate_limited_then_ok_retries_once(fake: FakeGemini, llm: GeminiLLM) -> None:
    fake.fail_next(1, status=429)
    reply = llm.generate(prompt="quero marcar", **ASK)
    assert reply.data == {"intent": "book", "confidence": 0.9}
    assert (reply.call.outcome, reply.call.attempts) == ("ok", 2)
    assert len(fake.requests) == 2


def test_server_error_twice_gives_up_after_two_attempts(fake: FakeGemini, llm: GeminiLLM) -> None:
    fake.fail_next(3, status=500)
    reply = llm.generate(prompt="quero marcar", **ASK)
    assert (reply.data, reply.text) == (None, None)
    assert (reply.call.outcome, reply.call.attempts) == ("server_error", 2)
    assert len(fake.requests) == 2


@pytest.mark.parametrize("kind", ["body", "text"])
def test_malformed_answer(fake: FakeGemini, llm: GeminiLLM, kind: Any) -> None:
    fake.malformed_next(2, kind=kind)
    reply = llm.generate(prompt="quero marcar", **ASK)
    assert (reply.data, reply.call.outcome, reply.call.attempts) == (None, "malformed", 2)


def test_malformed_then_ok(fake: FakeGemini, llm: GeminiLLM) -> None:
    fake.malformed_next(1, kind="text")
    reply = llm.generate(prompt="quero marcar", **ASK)
    assert (reply.call.outcome, reply.call.attempts) == ("ok", 2)
    assert reply.call.tokens_out > estimate_tokens(reply.text or "")  # both attempts counted


def test_json_that_is_not_an_object_is_malformed(fake: FakeGemini, llm: GeminiLLM) -> None:
    fake.enqueue([1, 2], [3])
    assert llm.generate(prompt="x", **ASK).call.outcome == "malformed"


def test_wrong_key_is_a_client_error_without_retry(fake: FakeGemini) -> None:
    with GeminiLLM(LLMConfig(api_key="wrong", base_url=fake.url)) as llm:
        reply = llm.generate(prompt="quero marcar", **ASK)
    assert (reply.data, reply.call.outcome, reply.call.attempts) == (None, "client_error", 1)
    assert len(fake.requests) == 1


def test_hang_times_out_within_the_budget(fake: FakeGemini, llm: GeminiLLM) -> None:
    fake.hang_next(2, seconds=10)
    started = time.monotonic()
    reply = llm.generate(prompt="quero marcar", budget_s=1.0, **ASK)
    elapsed = time.monotonic() - started
    assert reply.call.outcome == "timeout"
    assert 0.9 < elapsed < 1.5
    assert reply.call.attempts == 1  # no time left for a retry


def test_retry_after_timeout_when_the_budget_allows(fake: FakeGemini) -> None:
    fake.hang_next(1, seconds=10)
    config = LLMConfig(api_key=fake.api_key, base_url=fake.url, timeout_s=0.3)
    with GeminiLLM(config, backoff_s=0.05) as llm:
        started = time.monotonic()
        reply = llm.generate(prompt="quero marcar", budget_s=1.0, **ASK)
    assert (reply.call.outcome, reply.call.attempts) == ("ok", 2)
    assert time.monotonic() - started < 1.0


def test_no_retry_when_the_budget_is_spent(fake: FakeGemini, llm: GeminiLLM) -> None:
    fake.fail_next(1, status=503)
    reply = llm.generate(prompt="quero marcar", budget_s=0.3, **ASK)
    assert (reply.call.outcome, reply.call.attempts) == ("server_error", 1)


def test_no_budget_no_call(fake: FakeGemini, llm: GeminiLLM) -> None:
    reply = llm.generate(prompt="quero marcar", budget_s=0, **ASK)
    assert (reply.call.outcome, reply.call.attempts) == ("timeout", 0)
    assert fake.requests == []


def test_retries_zero_means_one_attempt(fake: FakeGemini) -> None:
    fake.fail_next(1, status=429)
    config = LLMConfig(api_key=fake.api_key, base_url=fake.url, retries=0)
    with GeminiLLM(config) as llm:
        reply = llm.generate(prompt="quero marcar", **ASK)
    assert (reply.call.outcome, reply.call.attempts) == ("rate_limited", 1)


def test_refused_connection_is_quick() -> None:
    config = LLMConfig(api_key="k", base_url=f"http://127.0.0.1:{free_port()}")
    with GeminiLLM(config) as llm:
        started = time.monotonic()
        reply = llm.generate(prompt="quero marcar", budget_s=3.0, **ASK)
    assert (reply.call.outcome, reply.call.attempts) == ("refused", 2)
    assert time.monotonic() - started < 1.0


async def test_async_ok_and_tokens(afake: FakeGemini) -> None:
    async with GeminiLLM(LLMConfig(api_key=afake.api_key, base_url=afake.url)) as llm:
        reply = await llm.agenerate(prompt="quero marcar", **ASK)
        again = await llm.agenerate(prompt="quero marcar", **ASK)
    assert reply.data == {"intent": "book", "confidence": 0.9}
    assert reply.call.tokens_in == estimate_tokens(f"{SYSTEM}\nquero marcar")
    assert again.ok


async def test_async_retry_and_failures(afake: FakeGemini) -> None:
    async with GeminiLLM(LLMConfig(api_key=afake.api_key, base_url=afake.url)) as llm:
        afake.fail_next(1, status=429)
        retried = await llm.agenerate(prompt="quero marcar", **ASK)
        afake.malformed_next(2)
        malformed = await llm.agenerate(prompt="quero marcar", **ASK)
    assert (retried.call.outcome, retried.call.attempts) == ("ok", 2)
    assert (malformed.call.outcome, malformed.call.attempts) == ("malformed", 2)


async def test_async_hang_times_out_within_the_budget(afake: FakeGemini) -> None:
    afake.hang_next(2, seconds=10)
    async with GeminiLLM(LLMConfig(api_key=afake.api_key, base_url=afake.url)) as llm:
        started = time.monotonic()
        reply = await llm.agenerate(prompt="quero marcar", budget_s=1.0, **ASK)
        elapsed = time.monotonic() - started
    assert reply.call.outcome == "timeout"
    assert 0.9 < elapsed < 1.5


async def test_async_concurrent_calls_share_one_client(afake: FakeGemini) -> None:
    async with GeminiLLM(LLMConfig(api_key=afake.api_key, base_url=afake.url)) as llm:
        replies = await asyncio.gather(
            *(llm.agenerate(prompt="quero marcar", **ASK) for _ in range(5))
        )
    assert [r.call.outcome for r in replies] == ["ok"] * 5


def test_one_event_loop_per_call_leaks_nothing(fake: FakeGemini) -> None:
    # The engine's sync API may wrap agenerate in asyncio.run() per turn, without aclose().
    llm = GeminiLLM(LLMConfig(api_key=fake.api_key, base_url=fake.url))
    for _ in range(3):
        reply = asyncio.run(llm.agenerate(prompt="quero marcar", **ASK))
        assert reply.ok
    gc.collect()  # filterwarnings=error turns an unclosed session or socket into a failure
    asyncio.run(llm.aclose())


async def test_async_refused_connection_does_not_sleep() -> None:
    config = LLMConfig(api_key="k", base_url=f"http://127.0.0.1:{free_port()}")
    async with GeminiLLM(config) as llm:
        started = time.monotonic()
        reply = await llm.agenerate(prompt="quero marcar", budget_s=3.0, **ASK)
    assert (reply.call.outcome, reply.call.attempts) == ("refused", 2)
    assert time.monotonic() - started < 1.0  # the SDK's hidden 1-10 s sleep would show here


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({}, LLMConfig(api_key=None), id="empty"),
        pytest.param({"GOOGLE_API_KEY": "g"}, LLMConfig(api_key="g"), id="google-key"),
        pytest.param(
            {"GEMINI_API_KEY": "a", "GOOGLE_API_KEY": "g"}, LLMConfig(api_key="a"), id="gemini-wins"
        ),
        pytest.param({"GEMINI_API_KEY": "  "}, LLMConfig(api_key=None), id="blank-key"),
        pytest.param(
            {
                "GEMINI_API_KEY": "a",
                "CLINICFLOW_GEMINI_MODEL": "gemini-2.5-pro",
                "CLINICFLOW_GEMINI_BASE_URL": "http://127.0.0.1:9999",
                "CLINICFLOW_GEMINI_TIMEOUT": "2.5",
            },
            LLMConfig(
                api_key="a",
                model="gemini-2.5-pro",
                base_url="http://127.0.0.1:9999",
                timeout_s=2.5,
            ),
            id="all",
        ),
    ],
)
def test_config_from_env(environ: dict[str, str], expected: LLMConfig) -> None:
    assert LLMConfig.from_env(environ) == expected


@pytest.mark.parametrize("value", ["abc", "0", "-1"])
def test_config_from_env_rejects_a_bad_timeout(value: str) -> None:
    with pytest.raises(LLMError, match="CLINICFLOW_GEMINI_TIMEOUT"):
        LLMConfig.from_env({"CLINICFLOW_GEMINI_TIMEOUT": value})


def test_llm_from_config() -> None:
    assert llm_from_config(LLMConfig(api_key=None)) is None
    llm = llm_from_config(LLMConfig(api_key="k", model="m"))
    assert isinstance(llm, GeminiLLM)
    assert llm.model == "m"
    with pytest.raises(LLMError):
        GeminiLLM(LLMConfig(api_key=None))


def test_import_does_not_load_the_sdk() -> None:
    code = "import sys, clinicflow.llm; assert 'google.genai' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
