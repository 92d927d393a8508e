"""Tests for clinicflow.waha: a real aiohttp client against the fake WAHA."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from clinicflow.errors import ChannelError
from clinicflow.testing.fake_waha import FakeWaha
from clinicflow.waha import WahaClient, sent_message_id

PATIENT = "5511988887777@c.us"
KEY = "chave-secreta"


@pytest.fixture
async def waha() -> AsyncIterator[FakeWaha]:
    async with FakeWaha(api_key=KEY) as fake:
        yield fake


@pytest.fixture
async def client(waha: FakeWaha) -> AsyncIterator[WahaClient]:
    async with WahaClient(waha.url, KEY, timeout_s=2) as waha_client:
        yield waha_client


async def test_send_text_body_and_headers(waha: FakeWaha, client: WahaClient) -> None:
    await client.send_text(PATIENT, "Olá! Como posso ajudar? 😊")
    await client.send_text(PATIENT, "Sim", reply_to=f"false_{PATIENT}_3EB0AA")
    assert waha.sent == [
        {"session": "default", "chatId": PATIENT, "text": "Olá! Como posso ajudar? 😊"},
        {
            "session": "default",
            "chatId": PATIENT,
            "text": "Sim",
            "reply_to": f"false_{PATIENT}_3EB0AA",
        },
    ]
    call = waha.calls[-1]
    assert (call.method, call.path, call.status) == ("POST", "/api/sendText", 201)
    assert call.headers["X-Api-Key"] == KEY


async def test_seen_and_typing_bodies(waha: FakeWaha, client: WahaClient) -> None:
    await client.send_seen(PATIENT)
    await client.send_seen(PATIENT, [f"false_{PATIENT}_A", f"false_{PATIENT}_B"])
    await client.send_seen("1203@g.us", ["false_1203@g.us_C_2@c.us"], participant="2@c.us")
    await client.start_typing(PATIENT)
    await client.stop_typing(PATIENT)
    got = [(c.path, c.json, c.status) for c in waha.calls]
    assert got == [
        ("/api/sendSeen", {"session": "default", "chatId": PATIENT}, 201),
        (
            "/api/sendSeen",
            {
                "session": "default",
                "chatId": PATIENT,
                "messageIds": [f"false_{PATIENT}_A", f"false_{PATIENT}_B"],
            },
            201,
        ),
        (
            "/api/sendSeen",
            {
                "session": "default",
                "chatId": "1203@g.us",
                "messageIds": ["false_1203@g.us_C_2@c.us"],
                "participant": "2@c.us",
            },
            201,
        ),
        ("/api/startTyping", {"session": "default", "chatId": PATIENT}, 201),
        ("/api/stopTyping", {"session": "default", "chatId": PATIENT}, 201),
    ]


@pytest.mark.parametrize("shape", ["NOWEB", "WEBJS", "GOWS"])
async def test_send_text_returns_the_id_for_every_engine(
    waha: FakeWaha, client: WahaClient, shape: str
) -> None:
    waha.send_text_shape = shape
    message_id = await client.send_text(PATIENT, "oi")
    assert message_id == waha.sent_ids[-1]
    assert message_id is not None and message_id.startswith(f"true_{PATIENT}_3EB0")


async def test_empty_send_text_answer_is_still_success(waha: FakeWaha, client: WahaClient) -> None:
    waha.send_text_shape = "empty"
    assert await client.send_text(PATIENT, "oi") is None
    assert len(waha.sent) == 1


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"key": {"remoteJid": "55119@s.whatsapp.net", "fromMe": True, "id": "3EB0X"}},
            "true_55119@c.us_3EB0X",
            id="noweb",
        ),
        pytest.param({"key": {"id": "3EB0X"}}, f"true_{PATIENT}_3EB0X", id="noweb-no-jid"),
        pytest.param({"id": {"_serialized": "true_1@c.us_Z"}}, "true_1@c.us_Z", id="webjs"),
        pytest.param({"id": {"fromMe": True, "id": "Z"}}, f"true_{PATIENT}_Z", id="webjs-partial"),
        pytest.param({"id": "true_1@c.us_Y"}, "true_1@c.us_Y", id="plain"),
        pytest.param(None, None, id="empty"),
        pytest.param([], None, id="list"),
        pytest.param({"id": 5}, None, id="id-number"),
        pytest.param({"id": {}}, None, id="id-empty-object"),
        pytest.param({"key": "x", "id": ""}, None, id="junk"),
    ],
)
def test_sent_message_id_shapes(body: Any, expected: str | None) -> None:
    assert sent_message_id(body, PATIENT) == expected


async def test_wrong_api_key_is_401_not_retryable(waha: FakeWaha) -> None:
    async with WahaClient(waha.url, "errada") as client:
        with pytest.raises(ChannelError) as info:
            await client.send_text(PATIENT, "oi")
    assert (info.value.status, info.value.retryable) == (401, False)
    assert "Unauthorized" in str(info.value)
    assert waha.sent == []


async def test_session_not_working_is_422_retryable(waha: FakeWaha, client: WahaClient) -> None:
    waha.set_status("SCAN_QR_CODE")
    with pytest.raises(ChannelError) as info:
        await client.send_text(PATIENT, "oi")
    assert (info.value.status, info.value.retryable) == (422, True)
    assert "not as expected" in str(info.value)


async def test_send_waits_for_the_session_like_waha(waha: FakeWaha, client: WahaClient) -> None:
    waha.not_working_wait_s = 2.0
    waha.set_status("STARTING")
    asyncio.get_running_loop().call_later(0.05, waha.set_status, "WORKING")
    assert await client.send_text(PATIENT, "oi")


async def test_unknown_session_is_404_not_retryable(waha: FakeWaha) -> None:
    async with WahaClient(waha.url, KEY, session="outra") as client:
        with pytest.raises(ChannelError) as info:
            await client.start_typing(PATIENT)
        assert await client.session_status() is None
    assert (info.value.status, info.value.retryable) == (404, False)
    assert "didn't find a session" in str(info.value)


async def test_validation_error_is_400_not_retryable(client: WahaClient) -> None:
    with pytest.raises(ChannelError) as info:
        await client.send_text(PATIENT, "")
    assert (info.value.status, info.value.retryable) == (400, False)
    assert "text should not be empty" in str(info.value)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_retryable(waha: FakeWaha, client: WahaClient, status: int) -> None:
    waha.fail_next(1, status=status, path="/api/sendText")
    await client.start_typing(PATIENT)  # other paths are not affected
    with pytest.raises(ChannelError) as info:
        await client.send_text(PATIENT, "oi")
    assert (info.value.status, info.value.retryable) == (status, True)
    assert await client.send_text(PATIENT, "oi")
    assert len(waha.sent) == 1


async def test_waha_down_is_retryable_then_recovers(waha: FakeWaha, client: WahaClient) -> None:
    await client.start_typing(PATIENT)  # a pooled keep-alive connection exists now
    await waha.down()
    for _ in range(2):  # the dropped pooled connection, then a refused new one
        with pytest.raises(ChannelError) as info:
            await client.send_text(PATIENT, "oi")
        assert info.value.retryable and info.value.status is None
    assert await client.session_status() is None
    await waha.up()
    assert await client.send_text(PATIENT, "oi")
    assert [body["text"] for body in waha.sent] == ["oi"]


async def test_timeout_is_retryable() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/api/startTyping", slow)
    async with (
        TestServer(app) as server,
        WahaClient(str(server.make_url("")), None, timeout_s=0.05) as client,
    ):
        with pytest.raises(ChannelError) as info:
            await client.start_typing(PATIENT)
    assert info.value.retryable and "timed out" in str(info.value)


async def test_engine_without_the_feature_is_not_retryable() -> None:
    async def not_implemented(request: web.Request) -> web.Response:
        body = {"statusCode": 422, "message": "The method is not implemented by the engine."}
        return web.json_response(body, status=422)

    app = web.Application()
    app.router.add_post("/api/startTyping", not_implemented)
    async with TestServer(app) as server, WahaClient(str(server.make_url(""))) as client:
        with pytest.raises(ChannelError) as info:
            await client.start_typing(PATIENT)
    assert (info.value.status, info.value.retryable) == (422, False)


async def test_session_status(waha: FakeWaha, client: WahaClient) -> None:
    assert await client.session_status() == "WORKING"
    waha.set_status("SCAN_QR_CODE")
    assert await client.session_status() == "SCAN_QR_CODE"


async def test_download_media(waha: FakeWaha, client: WahaClient) -> None:
    payload = waha.voice_message(PATIENT, b"OggS-audio-bytes")
    url = payload["media"]["url"]
    assert await client.download_media(url) == b"OggS-audio-bytes"
    assert waha.calls[-1].headers["X-Api-Key"] == KEY
    # WAHA announces files under its own idea of its host; we still fetch from base_url.
    elsewhere = url.replace(waha.url, "http://localhost:3000")
    assert await client.download_media(elsewhere) == b"OggS-audio-bytes"


async def test_expired_media_is_404_not_retryable(waha: FakeWaha, client: WahaClient) -> None:
    url = waha.voice_message(PATIENT)["media"]["url"]
    waha.files.clear()
    with pytest.raises(ChannelError) as info:
        await client.download_media(url)
    assert (info.value.status, info.value.retryable) == (404, False)
    assert "File not found" in str(info.value)


async def test_media_guards(waha: FakeWaha, client: WahaClient) -> None:
    calls = len(waha.calls)
    with pytest.raises(ChannelError) as info:
        await client.download_media("https://attacker.example/steal")
    assert not info.value.retryable
    assert len(waha.calls) == calls  # the API key never left for a foreign host
    url = waha.image_message(PATIENT, image=b"x" * 5000)["media"]["url"]
    with pytest.raises(ChannelError, match="over 100 bytes"):
        await client.download_media(url, max_bytes=100)
    async with WahaClient(waha.url, "errada") as wrong:
        with pytest.raises(ChannelError) as unauthorized:
            await wrong.download_media(url)
    assert unauthorized.value.status == 401


async def test_client_must_be_started_and_keeps_a_passed_session(waha: FakeWaha) -> None:
    with pytest.raises(ChannelError, match="not started"):
        await WahaClient(waha.url, KEY).start_typing(PATIENT)
    async with aiohttp.ClientSession() as http:
        async with WahaClient(waha.url, KEY, client_session=http) as client:
            await client.start_typing(PATIENT)
        assert not http.closed
    client = WahaClient(waha.url + "/", KEY)
    await client.start()
    await client.start()
    await client.stop_typing(PATIENT)
    await client.close()
    await client.close()


# -- contract: the bodies we send use the field names WAHA's spec declares --------------------

SPEC = Path(__file__).parents[2] / "shared" / "waha" / "openapi.json"


async def test_request_bodies_follow_the_spec(waha: FakeWaha, client: WahaClient) -> None:
    if not SPEC.exists():
        pytest.skip("WAHA's openapi.json is not beside the repository")
    spec = json.loads(SPEC.read_text(encoding="utf-8"))
    await client.send_text(PATIENT, "oi", reply_to=f"false_{PATIENT}_A")
    await client.send_seen(PATIENT, [f"false_{PATIENT}_A"], participant="2@c.us")
    await client.start_typing(PATIENT)
    await client.stop_typing(PATIENT)
    for call in waha.calls:
        operation = spec["paths"][call.path]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        schema = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert set(call.json) <= set(schema["properties"]), call.path
        assert set(schema["required"]) <= set(call.json), call.path
        assert "201" in operation["responses"]


async def test_html_error_pages_and_same_origin_media() -> None:
    async def gateway(request: web.Request) -> web.Response:
        if request.path == "/media/a.oga":
            return web.Response(body=b"audio")
        return web.Response(status=502, text="<html>Bad Gateway</html>", content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gateway)
    async with TestServer(app) as server, WahaClient(str(server.make_url(""))) as client:
        with pytest.raises(ChannelError) as info:
            await client.send_text(PATIENT, "oi")
        assert (info.value.status, info.value.retryable) == (502, True)
        assert await client.download_media(str(server.make_url("/media/a.oga"))) == b"audio"
