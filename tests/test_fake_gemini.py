"""The fake Gemini server: wire shapes, rules, queue, failures, recording, sync and async use."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from google import genai
from google.genai import errors, types

from clinicflow.testing import FakeGemini, GeminiRequest
from clinicflow.testing.fake_gemini import estimate_tokens, prompt_text

KEY = "fake-gemini-key"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini() as server:
        yield server


async def post(
    fake: FakeGemini,
    body: Any,
    *,
    path: str = "/v1beta/models/gemini-2.5-flash:generateContent",
    key: str | None = KEY,
) -> tuple[int, str]:
    headers = {"x-goog-api-key": key} if key is not None else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(fake.url + path, json=body, headers=headers) as response,
    ):
        return response.status, await response.text()


def contents(text: str, system: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"contents": [{"role": "user", "parts": [{"text": text}]}]}
    if system is not None:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    return body


def answer_text(raw: str) -> str:
    return str(json.loads(raw)["candidates"][0]["content"]["parts"][0]["text"])


async def test_answer_has_the_real_response_shape(fake: FakeGemini) -> None:
    fake.on("olá", "Oi!")
    status, raw = await post(fake, contents("olá", system="Você é a recepção."))
    assert status == 200
    payload = json.loads(raw)
    prompt = "Você é a recepção.\nolá"
    assert payload == {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "Oi!"}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": estimate_tokens(prompt),
            "candidatesTokenCount": estimate_tokens("Oi!"),
            "totalTokenCount": estimate_tokens(prompt) + estimate_tokens("Oi!"),
        },
        "modelVersion": "gemini-2.5-flash",
    }


async def test_queue_first_then_rules_then_default(fake: FakeGemini) -> None:
    fake.default_reply = "padrão"
    fake.on(re.compile(r"DIU", re.IGNORECASE), {"procedure": "diu"})
    fake.on("consulta", lambda body: "rule for " + prompt_text(body))
    fake.enqueue("queued")
    replies = [answer_text((await post(fake, contents(t)))[1]) for t in ("diu", "diu", "x")]
    assert replies == ["queued", '{"procedure": "diu"}', "padrão"]
    _, raw = await post(fake, contents("uma consulta"))
    assert answer_text(raw) == "rule for uma consulta"


async def test_every_request_is_recorded(fake: FakeGemini) -> None:
    await post(fake, contents("quero marcar", system="sys"), path="/v1/models/m1:generateContent")
    [record] = fake.requests
    assert isinstance(record, GeminiRequest)
    assert (record.method, record.api_version, record.model, record.action) == (
        "POST",
        "v1",
        "m1",
        "generateContent",
    )
    assert record.path == "/v1/models/m1:generateContent"
    assert record.headers["x-goog-api-key"] == KEY
    assert record.prompt == "sys\nquero marcar"
    assert record.json == contents("quero marcar", system="sys")


@pytest.mark.parametrize(
    ("key", "status", "google_status"),
    [
        pytest.param(None, 403, "PERMISSION_DENIED", id="missing"),
        pytest.param("wrong", 400, "INVALID_ARGUMENT", id="wrong"),
    ],
)
async def test_api_key_is_checked(
    fake: FakeGemini, key: str | None, status: int, google_status: str
) -> None:
    got, raw = await post(fake, contents("x"), key=key)
    assert got == status
    assert json.loads(raw)["error"]["status"] == google_status
    assert json.loads(raw)["error"]["code"] == status


async def test_any_key_when_api_key_is_none() -> None:
    async with FakeGemini(api_key=None) as fake:
        assert (await post(fake, contents("x"), key="anything"))[0] == 200


@pytest.mark.parametrize(
    ("status", "google_status"),
    [
        pytest.param(429, "RESOURCE_EXHAUSTED", id="429"),
        pytest.param(500, "INTERNAL", id="500"),
        pytest.param(503, "UNAVAILABLE", id="503"),
    ],
)
async def test_fail_next(fake: FakeGemini, status: int, google_status: str) -> None:
    fake.fail_next(2, status=status)
    for _ in range(2):
        got, raw = await post(fake, contents("x"))
        assert (got, json.loads(raw)["error"]["status"]) == (status, google_status)
    assert (await post(fake, contents("x")))[0] == 200


async def test_failures_are_consumed_in_order(fake: FakeGemini) -> None:
    fake.fail_next(1, status=429)
    fake.malformed_next(1, kind="text")
    fake.enqueue({"a": 1})
    assert (await post(fake, contents("x")))[0] == 429
    status, raw = await post(fake, contents("x"))
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(answer_text(raw))
    assert answer_text((await post(fake, contents("x")))[1]) == '{"a": 1}'  # queue kept


async def test_malformed_body_is_not_json(fake: FakeGemini) -> None:
    fake.malformed_next()
    status, raw = await post(fake, contents("x"))
    assert status == 200
    with pytest.raises(ValueError):
        json.loads(raw)


async def test_hang_then_answer(fake: FakeGemini) -> None:
    fake.hang_next(1, seconds=0.2)
    started = time.perf_counter()
    assert (await post(fake, contents("x")))[0] == 200
    assert time.perf_counter() - started >= 0.2


async def test_unknown_route_is_404(fake: FakeGemini) -> None:
    status, raw = await post(fake, {}, path="/v1/files")
    assert (status, json.loads(raw)["error"]["status"]) == (404, "NOT_FOUND")


async def test_reset_forgets_everything(fake: FakeGemini) -> None:
    fake.on("x", "rule")
    fake.enqueue("queued")
    fake.fail_next()
    await post(fake, contents("y"))
    fake.reset()
    assert fake.requests == []
    assert answer_text((await post(fake, contents("x")))[1]) == "{}"


def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError):
        _ = FakeGemini().url


@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_real_sdk_from_sync_code(version: str) -> None:
    with FakeGemini.running() as fake:
        fake.on("marcar", {"intent": "book"})
        options = types.HttpOptions(base_url=fake.url, api_version=version)
        with genai.Client(api_key=fake.api_key, http_options=options) as client:
            response = client.models.generate_content(model="gemini-2.5-flash", contents="marcar")
            stream = list(client.models.generate_content_stream(model="m", contents="marcar"))
            embedded = client.models.embed_content(model="text-embedding-004", contents=["a", "b"])
            wrong = genai.Client(api_key="wrong", http_options=options)
            with pytest.raises(errors.ClientError) as denied:
                wrong.models.generate_content(model="m", contents="x")
            wrong.close()
    assert response.text == '{"intent": "book"}'
    assert response.usage_metadata is not None
    assert response.usage_metadata.prompt_token_count == estimate_tokens("marcar")
    assert [chunk.text for chunk in stream] == ['{"intent": "book"}']
    assert embedded.embeddings is not None
    assert [len(e.values or []) for e in embedded.embeddings] == [768, 768]
    assert embedded.embeddings[0].values != embedded.embeddings[1].values
    assert denied.value.code == 400
    assert fake.requests[0].api_version == version


async def test_real_async_sdk(fake: FakeGemini) -> None:
    fake.enqueue("Oi")
    async with aiohttp.ClientSession() as session:
        options = types.HttpOptions(base_url=fake.url, aiohttp_client=session)
        client = genai.Client(api_key=fake.api_key, http_options=options)
        response = await client.aio.models.generate_content(model="m", contents="oi")
        await client.aio.aclose()
        client.close()
    assert response.text == "Oi"


def test_import_is_light() -> None:
    code = (
        "import sys, clinicflow.testing; "
        "assert 'clinicflow.testing.fake_gemini' not in sys.modules; "
        "assert 'google.genai' not in sys.modules; "
        "clinicflow.testing.FakeGemini; "
        "assert 'google.genai' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
