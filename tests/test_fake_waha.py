"""Tests for clinicflow.testing.fake_waha: webhooks like WAHA's, endpoints, failure controls."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from clinicflow.testing.fake_waha import FakeWaha
from clinicflow.testing.waha_messages import MessageBuilder, engine_of
from clinicflow.testing.waha_webhooks import new_ulid
from clinicflow.webhooks import Inbound, SessionStatus, parse_webhook, verify_hmac

PATIENT = "5511988887777@c.us"


class Receiver:
    """A webhook endpoint that records what arrives and answers from a script of statuses."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.statuses = list(statuses or [])
        self.received: list[tuple[bytes, dict[str, str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((await request.read(), dict(request.headers)))
        return web.Response(status=self.statuses.pop(0) if self.statuses else 200)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/waha", target.handle)
    async with TestServer(app) as server:
        yield target, str(server.make_url("/webhooks/waha"))


async def test_emit_builds_the_envelope_like_waha(receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    async with FakeWaha(hmac_key="segredo") as waha:
        payload = waha.text_message(PATIENT, "Olá, tudo bem? Quero saber do exame")
        assert await waha.emit(url, payload=payload, metadata={"clinic": "1"}) == [200]
    raw, headers = target.received[0]
    env = json.loads(raw)
    assert list(env) == [
        "id",
        "timestamp",
        "event",
        "session",
        "metadata",
        "me",
        "payload",
        "engine",
        "environment",
    ]
    assert re.fullmatch(r"evt_[0-9a-hjkmnp-tv-z]{26}", env["id"])
    assert env["payload"] == payload and env["engine"] == "NOWEB"
    assert "Olá".encode() in raw and b"\\u00e1" not in raw  # raw UTF-8, not escaped
    assert b'": ' not in raw and b'", "' not in raw  # compact separators
    assert headers["User-Agent"] == "WAHA/2026.7.1"
    assert headers["X-Webhook-Timestamp"] == str(env["timestamp"])
    assert re.fullmatch(r"[0-9a-z]{26}", headers["X-Webhook-Request-Id"])
    assert headers["X-Webhook-Hmac-Algorithm"] == "sha512"
    assert verify_hmac(raw, "segredo", headers["X-Webhook-Hmac"])
    assert isinstance(parse_webhook(raw), Inbound)


async def test_unsigned_without_a_key_and_no_metadata(receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    async with FakeWaha() as waha:
        await waha.emit(url, "session.status")
    raw, headers = target.received[0]
    assert "X-Webhook-Hmac" not in headers and "metadata" not in json.loads(raw)
    assert parse_webhook(raw) == SessionStatus("default", "WORKING")


async def test_retries_resend_identical_bytes_and_headers(receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    target.statuses = [500, 401, 404, 503]
    async with FakeWaha(hmac_key="k") as waha:
        statuses = await waha.emit(url, payload=waha.voice_message(PATIENT))
    assert statuses == [500, 401, 404, 503, 200]
    assert len({raw for raw, _ in target.received}) == 1
    volatile = {"Date"}
    assert (
        len(
            {
                json.dumps({k: v for k, v in h.items() if k not in volatile})
                for _, h in target.received
            }
        )
        == 1
    )


async def test_retries_give_up_after_the_limit(receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    target.statuses = [500] * 20
    async with FakeWaha() as waha:
        assert (
            await waha.emit(url, payload=waha.text_message(PATIENT, "oi"), retries=3) == [500] * 4
        )


async def test_connection_errors_are_retried() -> None:
    async with FakeWaha() as waha:
        dead = "http://127.0.0.1:9/webhooks/waha"  # discard port: nothing listens
        statuses = await waha.emit(dead, payload=waha.text_message(PATIENT, "oi"), retries=2)
    assert statuses == [None, None, None]


async def test_one_request_can_be_delivered_concurrently(receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    async with FakeWaha() as waha:
        request = waha.webhook("message", waha.text_message(PATIENT, "oi"))
        await asyncio.gather(*(waha.deliver(url, request) for _ in range(16)))
        assert len(waha.emitted) == 16
    assert len(target.received) == 16 and len({raw for raw, _ in target.received}) == 1
    with pytest.raises(ValueError, match="needs a payload"):
        waha.webhook("message")


@pytest.mark.parametrize("engine", ["NOWEB", "GOWS", "WEBJS"])
async def test_envelope_engine_follows_the_payload(engine: str) -> None:
    async with FakeWaha(engine="NOWEB") as waha:
        payload = MessageBuilder(engine).text_message(PATIENT, "oi")
        assert engine_of(payload) == engine
        assert json.loads(waha.webhook("message", payload).body)["engine"] == engine


def test_ulids_are_unique_and_sort_by_time() -> None:
    ids = [new_ulid() for _ in range(200)]
    assert len(set(ids)) == 200 and all(re.fullmatch(r"[0-9a-z]{26}", i) for i in ids)
    assert ids[0][:10] <= ids[-1][:10]  # the first 10 characters are the millisecond time


async def _get(url: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http, http.get(url, **kw) as response:
        return response.status, await response.json(content_type=None)


async def test_server_endpoints_and_api_key() -> None:
    async with FakeWaha(api_key="k", engine="GOWS") as waha:
        assert await _get(f"{waha.url}/health") == (
            401,
            {"message": "Unauthorized", "statusCode": 401},
        )
        status, body = await _get(f"{waha.url}/health", headers={"X-Api-Key": "k"})
        assert (status, body["status"]) == (200, "ok")
        assert await _get(f"{waha.url}/ping?x-api-key=k") == (200, {"message": "pong"})
        status, body = await _get(f"{waha.url}/api/server/version", headers={"X-Api-Key": "k"})
        assert body["version"] == "2026.7.1" and body["engine"] == "GOWS"
        status, body = await _get(f"{waha.url}/api/nothing", headers={"X-Api-Key": "k"})
        assert (status, body["error"]) == (404, "Not Found")
        status, body = await _get(
            f"{waha.url}/api/files/default/none.oga", headers={"X-Api-Key": "k"}
        )
        assert (status, body["error"]["key"]) == (404, "FILE_NOT_FOUND")
        status, body = await _get(f"{waha.url}/api/sessions/default", headers={"X-Api-Key": "k"})
        assert body["status"] == "WORKING" and body["me"]["id"] == waha.me_id
        assert [c.status for c in waha.calls] == [401, 200, 200, 200, 404, 404, 200]


async def test_lid_to_phone_map() -> None:
    async with FakeWaha(api_key="k") as waha:
        key = {"X-Api-Key": "k"}
        waha.add_lid("208898765432109", "5511987650003@c.us")  # bare or with @lid
        for lid in ("208898765432109%40lid", "208898765432109"):
            status, body = await _get(f"{waha.url}/api/default/lids/{lid}", headers=key)
            assert (status, body) == (200, {"lid": "208898765432109@lid",
                                            "pn": "5511987650003@c.us"})  # fmt: skip
        status, body = await _get(f"{waha.url}/api/default/lids/1%40lid", headers=key)
        assert body == {"lid": "1@lid", "pn": None}  # unknown: pn null
        status, body = await _get(f"{waha.url}/api/default/lids/pn/5511987650003", headers=key)
        assert body == {"lid": "208898765432109@lid", "pn": "5511987650003@c.us"}
        status, _ = await _get(f"{waha.url}/api/other/lids/1%40lid", headers=key)
        assert status == 404
        assert (await _get(f"{waha.url}/api/default/lids/1%40lid"))[0] == 401


async def test_validation_and_not_json_bodies() -> None:
    async with FakeWaha() as waha, aiohttp.ClientSession() as http:
        async with http.post(f"{waha.url}/api/sendText", data=b"not json") as response:
            body = await response.json()
        assert response.status == 400 and body["error"] == "Bad Request"
        assert "chatId should not be empty" in body["message"]
        async with http.post(f"{waha.url}/api/sendSeen", json={"session": "default"}) as response:
            assert response.status == 400


async def test_down_refuses_connections_and_up_keeps_the_port() -> None:
    async with FakeWaha() as waha:
        port = waha.port
        await waha.down()
        await waha.down()  # idempotent
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(f"{waha.url}/ping")
        await waha.up()
        await waha.up()  # idempotent
        assert waha.port == port
        assert await _get(f"{waha.url}/ping") == (200, {"message": "pong"})


async def test_retry_delay_and_explicit_ids(receiver: tuple[Receiver, str]) -> None:
    target, url = receiver
    target.statuses = [500]
    async with FakeWaha() as waha:
        voice = waha.voice_message(PATIENT, msg_id=f"false_{PATIENT}_3EB0CAFE")
        assert voice["id"] == f"false_{PATIENT}_3EB0CAFE"
        assert voice["media"]["url"].endswith(f"/false_{PATIENT}_3EB0CAFE.oga")
        assert await waha.emit(url, payload=voice, retry_delay=0.01) == [500, 200]
    with pytest.raises(RuntimeError, match="not started"):
        await waha.emit(url, payload=voice)
