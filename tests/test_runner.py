"""The runner end to end: real aiohttp server, real SQLite, real engine, the fake WAHA."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
import json

import pytest
from runner_harness import (  # noqa: F401 - fixtures
    API_KEY,
    STAFF_PHONE,
    STAFF_TOKEN,
    MakeLive,
    base_config,
    data_dir,
    embedder,
    first_contact,
    make_live,
    prebuilt,
    until,
    waha,
)

from clinicflow.testing.waha_webhooks import webhook_request

# The storage, runner, follow-up and crash tests run on SQLite and PostgreSQL (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")


PATIENT = "5511988887777@c.us"
AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}


async def test_no_typing_indicator_when_the_pause_is_disabled(make_live: MakeLive) -> None:
    live = await make_live(typing_delay_max=0)
    assert await live.say(PATIENT, "oi") == [200]
    await live.settle()
    paths = [c.path for c in live.waha.calls if c.json and c.json.get("chatId") == PATIENT]
    assert paths[0] == "/api/sendSeen" and "/api/startTyping" not in paths
    assert paths.count("/api/sendText") == len(live.sent_to(PATIENT)) >= 2


async def test_patient_message_answered_with_seen_and_typing(make_live: MakeLive) -> None:
    live = await make_live(typing_delay_max=0.01)
    assert await live.say(PATIENT, "oi") == [200]
    await live.settle()
    assert live.sent_to(PATIENT)
    paths = [c.path for c in live.waha.calls if c.json and c.json.get("chatId") == PATIENT]
    # Seen once for the new message, then typing before each reply.
    assert paths[:4] == ["/api/sendSeen", "/api/startTyping", "/api/stopTyping", "/api/sendText"]
    assert paths[4:7] == ["/api/startTyping", "/api/stopTyping", "/api/sendText"]
    assert paths.count("/api/sendSeen") == 1
    assert all(c.headers.get("X-Api-Key") == API_KEY for c in live.waha.calls)
    async with live.http.get(live.url("/health")) as r:
        health = await r.json()
    assert r.status == 200 and health["database"] == "ok"
    await until(lambda: live.runtime.waha_status == "WORKING")
    async with live.http.get(live.url("/metrics")) as r:
        text = await r.text()
    assert "clinicflow_messages_in_total 1.0" in text
    assert "clinicflow_turn_duration_seconds_count 1.0" in text
    assert "clinicflow_outbox_depth 0.0" in text


async def test_sixteen_copies_and_message_any_give_one_reply(make_live: MakeLive) -> None:
    live = await make_live()
    payload = live.waha.text_message(PATIENT, "oi")
    request = live.waha.webhook("message", payload)
    twin = live.waha.webhook("message.any", payload)
    results = await asyncio.gather(
        *[live.waha.deliver(live.hook, request, retries=0) for _ in range(16)],
        live.waha.deliver(live.hook, twin, retries=0),
    )
    assert all(r == [200] for r in results)
    await live.settle()
    assert len(live.turns(PATIENT)) == 1
    replies = live.engine.store.query(
        "SELECT COUNT(*) AS n FROM messages WHERE chat_id = ? AND direction = 'out'", (PATIENT,)
    )[0]["n"]
    assert len(live.sent_to(PATIENT)) == replies > 0
    assert live.runtime.metrics.value("duplicates_dropped") == 16


async def test_groups_status_broadcast_newsletter_ignored(make_live: MakeLive) -> None:
    live = await make_live()
    w = live.waha
    payloads = [
        w.group_message("120363000000000001@g.us", "oi grupo"),
        w.status_message("minha story"),
        w.newsletter_message("novidades"),
        w.text_message("123456@broadcast", "lista"),
    ]
    for payload in payloads:
        assert await w.emit(live.hook, "message", payload, retries=0) == [200]
    assert live.runtime.inbox.pending() == []
    assert live.runtime.conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 0
    await asyncio.sleep(0.1)
    assert w.sent == []


async def test_lid_chat_is_a_patient(make_live: MakeLive) -> None:
    live = await make_live()
    lid = "176369157804064@lid"
    await live.say(lid, "oi")
    await live.settle()
    assert live.sent_to(lid)


async def test_takeover_silences_bot_and_handback_resumes(make_live: MakeLive) -> None:
    live = await make_live()
    await live.say(PATIENT, "oi")
    await live.settle()
    answered = len(live.waha.sent)
    # Our own API send echoed back: ignored, no takeover.
    echo = live.waha.text_message(PATIENT, live.sent_to(PATIENT)[0], from_me=True, source="api")
    await live.waha.emit(live.hook, "message.any", echo, retries=0)
    mine = live.waha.text_message(PATIENT, "Oi! Aqui é a Rita, da recepção", from_me=True)
    assert await live.waha.emit(live.hook, "message.any", mine, retries=0) == [200]
    await live.settle()
    assert live.engine.state_of(PATIENT)["status"] == "human"
    await live.say(PATIENT, "quero marcar uma consulta")
    await live.settle()
    assert len(live.waha.sent) == answered  # the bot stayed silent
    async with live.http.get(live.url("/staff/conversations?status=human"), headers=AUTH) as r:
        listed = await r.json()
    assert [c["chat_id"] for c in listed["conversations"]] == [PATIENT]
    handback = live.url(f"/staff/conversations/{PATIENT}/handback")
    async with live.http.post(handback, headers=AUTH) as r:
        assert r.status == 200
    await live.settle()
    assert live.engine.state_of(PATIENT)["status"] == "bot"
    assert len(live.waha.sent) > answered
    before = len(live.waha.sent)
    await live.say(PATIENT, "qual o endereço?")
    await live.settle()
    assert len(live.waha.sent) > before


async def test_staff_command_by_whatsapp(make_live: MakeLive) -> None:
    live = await make_live()
    await live.say(PATIENT, "oi")
    await live.settle()
    mine = live.waha.text_message(PATIENT, "deixa comigo", from_me=True)
    await live.waha.emit(live.hook, "message.any", mine, retries=0)
    await live.settle()
    assert live.engine.state_of(PATIENT)["status"] == "human"
    await live.say(STAFF_PHONE, "#devolver +55 11 98888-7777")
    await live.settle()
    assert live.engine.state_of(PATIENT)["status"] == "bot"
    assert "devolvida" in live.sent_to(STAFF_PHONE)[-1]


async def test_handoff_brief_goes_to_staff(make_live: MakeLive) -> None:
    live = await make_live()
    await live.say(PATIENT, "quero falar com uma atendente")
    await live.settle()
    if live.engine.state_of(PATIENT)["status"] != "waiting_human":
        await live.say(PATIENT, "falar com atendente humano por favor")
        await live.settle()
    assert live.engine.state_of(PATIENT)["status"] == "waiting_human"
    assert live.sent_to(STAFF_PHONE), "the brief reaches the staff phone"
    async with live.http.get(live.url(f"/staff/conversations/{PATIENT}"), headers=AUTH) as r:
        shown = await r.json()
    assert shown["handoff"] is not None and shown["messages"]


async def test_hmac_enforced(make_live: MakeLive) -> None:
    live = await make_live(waha_hmac_key="shared-secret")
    payload = live.waha.text_message(PATIENT, "oi")
    assert await live.waha.emit(live.hook, "message", payload, retries=0) == [401]
    bad = live.waha.webhook("message", payload, hmac_key="wrong")
    assert await live.waha.deliver(live.hook, bad, retries=0) == [401]
    assert live.runtime.conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 0
    good = live.waha.webhook("message", payload, hmac_key="shared-secret")
    assert await live.waha.deliver(live.hook, good, retries=0) == [200]
    await live.settle()
    assert live.sent_to(PATIENT)


async def test_waha_down_then_back_delivers_once_in_order(make_live: MakeLive) -> None:
    live = await make_live()
    other = "5511977770000@c.us"
    await live.waha.down()
    for text in ("oi", "meu nome é Ana", "quero saber do DIU"):
        assert await live.say(PATIENT, text) == [200]
        assert await live.say(other, text) == [200]
        await live.runtime.processor.idle()
    await asyncio.sleep(0.3)
    assert live.runtime.outbox.depth() > 0
    await live.waha.up()
    live.waha.fail_next(2, 500, "/api/sendText")
    await live.settle(20)
    for chat in (PATIENT, other):
        expected = [
            r[0]
            for r in live.runtime.conn.execute(
                "SELECT text FROM outbox WHERE chat_id = ? ORDER BY id", (chat,)
            )
        ]
        assert live.sent_to(chat) == expected
    statuses = {r[0] for r in live.runtime.conn.execute("SELECT status FROM outbox")}
    assert statuses == {"sent"}


async def test_session_not_working_is_retried(make_live: MakeLive) -> None:
    live = await make_live()
    live.waha.set_status("SCAN_QR_CODE")
    await live.say(PATIENT, "oi")
    await until(lambda: live.runtime.conn.execute(
        "SELECT MAX(attempts) FROM outbox").fetchone()[0] or 0 >= 1)  # fmt: skip
    assert live.waha.sent == []
    live.waha.set_status("WORKING")
    await live.settle()
    assert live.sent_to(PATIENT)


async def test_malformed_and_oversized_refused(make_live: MakeLive) -> None:
    live = await make_live(max_body=4096)
    cases = [
        (b"{not json", 400),
        (b"[1,2]", 400),
        (b'{"event":"message"}', 400),
        (b'{"event":"message","session":"default","payload":{"from":"1@c.us"}}', 400),
        (b'{"event":"presence.update","session":"default","payload":{}}', 200),
        (b"x" * 10000, 413),
    ]
    for body, status in cases:
        async with live.http.post(live.hook, data=body) as r:
            assert r.status == status, body[:40]
            if status == 400:
                assert (await r.json())["error"]
    assert live.runtime.conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 0


async def test_staff_api_auth(make_live: MakeLive) -> None:
    live = await make_live()
    url = live.url("/staff/conversations")
    async with live.http.get(url) as r:
        assert r.status == 401
    async with live.http.get(url, headers={"Authorization": "Bearer nope"}) as r:
        assert r.status == 401
    async with live.http.get(url, headers=AUTH) as r:
        assert r.status == 200
    async with live.http.post(live.url("/staff/conversations/1@c.us/close"), headers=AUTH) as r:
        assert r.status == 404


async def test_staff_api_disabled_without_token(make_live: MakeLive) -> None:
    live = await make_live(staff_token=None)
    async with live.http.get(live.url("/staff/conversations"), headers=AUTH) as r:
        assert r.status == 403
        assert "CLINICFLOW_STAFF_TOKEN" in (await r.json())["error"]


async def test_burst_merged_into_one_turn(make_live: MakeLive) -> None:
    live = await make_live(burst_quiet=0.4)
    base = 1_760_000_000
    texts = ["oi", "tudo bem?", "queria saber do DIU"]
    # Delivered out of order: the merged text follows payload.timestamp.
    for i in (0, 2, 1):
        await live.say(PATIENT, texts[i], timestamp=base + i)
    await live.settle()
    turns = live.turns(PATIENT)
    assert [t["text"] for t in turns] == ["\n".join(texts)]


async def test_media_acknowledged_and_voice_transcribed(make_live: MakeLive) -> None:
    async def transcribe(audio: bytes, mimetype: str) -> str | None:
        assert audio.startswith(b"OggS") and mimetype.startswith("audio/ogg")
        return "queria saber o valor da consulta"

    live = await make_live(transcriber=transcribe)
    w = live.waha
    await w.emit(live.hook, "message", w.image_message(PATIENT, ""), retries=0)
    await live.settle()
    ack = live.engine.catalog.clinic.text("media_received")
    assert live.sent_to(PATIENT) == first_contact(live.engine, ack)
    await w.emit(live.hook, "message", w.voice_message(PATIENT), retries=0)
    await live.settle()
    assert live.turns(PATIENT)[-1]["text"] == "queria saber o valor da consulta"
    # A voice note whose file expired: the acknowledgement calls it an audio, no crash.
    await w.emit(live.hook, "message", w.voice_message(PATIENT, downloaded=False), retries=0)
    await live.settle()
    assert live.sent_to(PATIENT)[-1] == live.engine.catalog.clinic.text("audio_received")
    assert "áudio" in live.sent_to(PATIENT)[-1] and "arquivo" not in live.sent_to(PATIENT)[-1]


async def test_webhook_request_identical_retries_dedupe(make_live: MakeLive) -> None:
    live = await make_live()
    env = live.waha.webhook("message", live.waha.text_message(PATIENT, "oi")).envelope
    request = webhook_request(json.loads(json.dumps(env)))
    for _ in range(3):
        assert await live.waha.deliver(live.hook, request, retries=0) == [200]
    await live.settle()
    assert len(live.turns(PATIENT)) == 1


def _processing_row(live: object, message_id: str, text: str) -> None:
    conn = live.runtime.conn  # type: ignore[attr-defined]
    with conn:
        conn.execute(
            "INSERT INTO inbox (session, message_id, chat_id, timestamp, text, kind, status, "
            "batch_id, received_at) VALUES ('default', ?, ?, 1, ?, 'text', 'processing', ?, 0)",
            (message_id, PATIENT, text, message_id),
        )


async def test_recovery_after_turn_before_outbox_rebuilds_replies(make_live: MakeLive) -> None:
    live = await make_live()
    await live.say(PATIENT, "oi")
    await live.settle()
    # A crash after the engine committed the turn, before its replies reached the outbox.
    result = await live.engine.ahandle(PATIENT, "qual o endereço?", message_id="false_crash")
    _processing_row(live, "false_crash", "qual o endereço?")
    before = len(live.waha.sent)
    assert live.runtime.processor.recover() == 1
    await live.settle()
    assert len(live.turns(PATIENT)) == 2  # the turn did not run again
    assert live.sent_to(PATIENT)[-len(result.replies) :] == list(result.replies)
    assert len(live.waha.sent) == before + len(result.replies)


async def test_recovery_after_outbox_commit_sends_nothing_new(make_live: MakeLive) -> None:
    live = await make_live()
    _processing_row(live, "false_done", "oi")
    with live.runtime.conn:
        live.runtime.conn.execute(
            "INSERT INTO outbox (chat_id, text, batch_id, status, created_at) "
            "VALUES (?, 'já enviada', 'false_done', 'sent', 0)",
            (PATIENT,),
        )
    live.runtime.processor.recover()
    await live.settle()
    assert live.waha.sent == [] and live.turns(PATIENT) == []
