"""Events that are not messages, and clean data at the door, through the runner and the fake
WAHA: edits, revokes, calls, reactions, poll votes and settings are never answered; hostile
ids, lone surrogates, browser posts and broken bearer headers are handled."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest
from runner_harness import (  # noqa: F401 - fixtures
    Live,
    MakeLive,
    data_dir,
    embedder,
    make_live,
    prebuilt,
    until,
    waha,
    with_staff,
)

PATIENT = "5511988887777@c.us"
ENGINES = ["NOWEB", "GOWS", "WEBJS"]


async def emit(live: Live, payload: dict[str, Any], event: str = "message") -> None:
    assert await live.waha.emit(live.hook, event, payload, retries=0) == [200]


def inbox_rows(live: Live) -> list[tuple[str, str, str]]:
    rows = live.runtime.conn.execute("SELECT kind, status, text FROM inbox ORDER BY id")
    return [tuple(r) for r in rows]


def events(live: Live, chat: str = PATIENT) -> list[str]:
    return [e["type"] for e in live.engine.store.events(chat)]


@pytest.mark.parametrize("engine", ENGINES)
async def test_system_events_are_never_answered(make_live: MakeLive, engine: str) -> None:
    live = await make_live()
    w = live.waha
    first = w.text_message(PATIENT, "oi", engine=engine)
    await emit(live, first)
    await live.settle()
    answered = len(w.sent)
    assert answered > 0
    media_ack = live.engine.catalog.clinic.text("media_received")
    cases: list[tuple[str, dict[str, Any]]] = [
        ("message.any", w.edit_message(PATIENT, first["id"], "olá", encrypted=True, engine=engine)),
        ("message", w.edit_message(PATIENT, first["id"], "olá", engine=engine)),
        ("message.edited", w.edited_event(PATIENT, first["id"], "olá", engine=engine)),
        ("message", w.call_message(PATIENT, engine=engine)),
        ("call.received", w.call_event(PATIENT)),
        ("message.reaction", w.reaction_event(PATIENT, w.sent_ids[0], "🙏")),
        ("message", w.reaction_message(PATIENT, w.sent_ids[0], "❤️", engine=engine)),
        ("message", w.poll_vote_message(PATIENT, "3EB0POLL", engine=engine)),
        ("message", w.disappearing_setting(PATIENT, engine=engine)),
        ("message", w.revoke_message(PATIENT, first["id"], engine=engine)),
        ("message.revoked", w.revoked_event(PATIENT, first["id"], engine=engine)),
    ]
    for event, payload in cases:
        await emit(live, payload, event)
    await live.settle()
    await asyncio.sleep(0.1)
    assert len(w.sent) == answered, [m["text"] for m in w.sent[answered:]]
    assert media_ack not in [m["text"] for m in w.sent]
    kinds = [kind for kind, _, _ in inbox_rows(live)]
    assert "other" not in kinds and "document" not in kinds
    recorded = events(live)
    assert "call_received" in recorded
    if engine != "WEBJS":  # WEBJS shows an edit only through message.edited
        assert "reaction" in recorded and "message_edited" in recorded
        assert "message_revoked" in recorded
        # The revoked "oi" left the transcript (its row is kept, marked).
        transcript = [m["text"] for m in live.engine.store.messages(PATIENT)]
        assert "oi" not in transcript
        marked = live.engine.store.query(
            "SELECT revoked_at FROM messages WHERE chat_id = ? AND direction = 'in'", (PATIENT,)
        )
        assert marked[0]["revoked_at"]


async def test_an_edit_of_a_waiting_message_replaces_it(make_live: MakeLive) -> None:
    live = await make_live(burst_quiet=0.6)
    w = live.waha
    typo = w.text_message(PATIENT, "qual o valro da conslta?")
    await emit(live, typo)
    await emit(live, w.edit_message(PATIENT, typo["id"], "qual o valor da consulta?"))
    await live.settle()
    assert [t["text"] for t in live.turns(PATIENT)] == ["qual o valor da consulta?"]
    # The event form (message.edited), for the next message.
    second = w.text_message(PATIENT, "e o endereso?")
    await emit(live, second)
    await emit(live, w.edited_event(PATIENT, second["id"], "e o endereço?"), "message.edited")
    await live.settle()
    assert [t["text"] for t in live.turns(PATIENT)][-1] == "e o endereço?"
    edited = [json.loads(r[0]) for r in live.runtime.conn.execute(
        "SELECT meta FROM inbox WHERE kind = 'text' ORDER BY id")]  # fmt: skip
    assert edited[0]["edited_from"] == "qual o valro da conslta?"


async def test_a_revoke_of_a_waiting_message_removes_it(make_live: MakeLive) -> None:
    live = await make_live(burst_quiet=0.6)
    w = live.waha
    await emit(live, w.text_message(PATIENT, "oi"))
    wrong = w.text_message(PATIENT, "mensagem para outra pessoa")
    await emit(live, wrong)
    await emit(live, w.revoke_message(PATIENT, wrong["id"]))
    await live.settle()
    assert [t["text"] for t in live.turns(PATIENT)] == ["oi"]
    rows = inbox_rows(live)
    assert ("text", "revoked", "mensagem para outra pessoa") in rows  # kept, marked


async def test_a_revoke_after_a_merged_turn_trims_her_line(make_live: MakeLive) -> None:
    live = await make_live(burst_quiet=0.3)
    w = live.waha
    one = w.text_message(PATIENT, "oi", timestamp=1_760_000_000)
    two = w.text_message(PATIENT, "meu cpf é 123", timestamp=1_760_000_001)
    await emit(live, one)
    await emit(live, two)
    await live.settle()
    assert [t["text"] for t in live.turns(PATIENT)] == ["oi\nmeu cpf é 123"]
    await emit(live, w.revoked_event(PATIENT, two["id"]), "message.revoked")
    await live.settle()
    transcript = [m["text"] for m in live.engine.store.messages(PATIENT) if m["direction"] == "in"]
    assert transcript == ["oi"]
    [revoked] = [e for e in live.engine.store.events(PATIENT) if e["type"] == "message_revoked"]
    assert revoked["data"]["transcript"] == "trimmed"


async def test_a_voice_note_is_called_an_audio(make_live: MakeLive) -> None:
    live = await make_live()
    w = live.waha
    await emit(live, w.voice_message(PATIENT, downloaded=False))
    await live.settle()
    ack, _notice = live.sent_to(PATIENT)
    assert ack == live.engine.catalog.clinic.text("audio_received")
    assert "áudio" in ack and "arquivo" not in ack


# -- clean data at the door ----------------------------------------------------------------------


async def test_a_lone_surrogate_is_stored_not_a_500(make_live: MakeLive) -> None:
    live = await make_live()
    payload = live.waha.text_message(PATIENT, "PLACEHOLDER", push_name="Ana PLACEHOLDER")
    body = live.waha.webhook("message", payload).body
    body = body.replace(b"PLACEHOLDER", b"oi \\ud83d")  # JSON allows it; UTF-8 cannot hold it
    for _ in range(2):
        async with live.http.post(live.hook, data=body,
                                  headers={"Content-Type": "application/json"}) as r:  # fmt: skip
            assert r.status == 200
    await live.settle()
    [(_, status, text)] = inbox_rows(live)
    assert text == "oi \ufffd" and status == "done"
    assert live.sent_to(PATIENT)


BAD_IDS = [
    pytest.param("../../etc/passwd@c.us", id="path"),
    pytest.param("' OR 1=1 --@c.us", id="sql"),
    pytest.param("5511988887777\n@c.us", id="newline"),
    pytest.param("5511\u202e98887777@c.us", id="bidi"),
    pytest.param("5511988887777@c.us\x00", id="nul"),
    pytest.param("1" * 245_000 + "@c.us", id="245KB"),
    pytest.param("12@c.us", id="too-short"),
    pytest.param("5511988887777@evil.com", id="foreign-server"),
    pytest.param("+5511987650106@c.us", id="plus"),
    pytest.param("5511987650107:12@c.us", id="device-suffix"),
    pytest.param("5511987650104@c.us\n", id="trailing-newline"),
    pytest.param("5511987650102", id="no-server"),
]


@pytest.mark.parametrize("chat", BAD_IDS)
async def test_malformed_chat_ids_are_refused_and_logged_once(
    make_live: MakeLive, caplog: pytest.LogCaptureFixture, chat: str
) -> None:
    caplog.set_level("INFO", logger="clinicflow.runner")
    live = await make_live()
    payload = live.waha.text_message(PATIENT, "oi")
    payload["from"] = chat  # what WAHA would have put there, had WhatsApp sent it
    payload["_data"]["key"]["remoteJid"] = chat if len(chat) < 1000 else PATIENT
    request = live.waha.webhook("message", payload)
    for _ in range(3):  # WAHA's retries
        assert await live.waha.deliver(live.hook, request, retries=0) == [200]
    await asyncio.sleep(0.1)
    assert live.runtime.conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 0
    assert live.waha.sent == []
    logged = [r.getMessage() for r in caplog.records if "webhook_bad_chat_id" in r.getMessage()]
    assert len(logged) == 1
    line = logged[0]
    assert "\n" not in line and "\x00" not in line and "\u202e" not in line
    assert len(line) < 400
    # Logged as a pseudonym and a shape: no number of hers in clear, however malformed.
    assert f"id={live.runtime.alias(chat)} " in line and "shape=" in line
    for digits in re.findall(r"[0-9]{8,}", chat):
        assert digits[:8] not in line


async def test_unsigned_webhooks_from_a_browser_are_refused(make_live: MakeLive) -> None:
    live = await make_live()
    body = live.waha.webhook("message", live.waha.text_message(PATIENT, "oi")).body
    for browser in (
        {"Content-Type": "text/plain", "Origin": "https://evil.example"},
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": "null"},
        {"Content-Type": "text/plain", "Sec-Fetch-Site": "cross-site"},
    ):
        async with live.http.post(live.hook, data=body, headers=browser) as r:
            assert r.status == 403
    assert live.runtime.conn.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 0
    # A plain client posting text (no browser headers) is not a browser.
    async with live.http.post(live.hook, data=body.decode()) as r:
        assert r.status == 200


@pytest.mark.parametrize("path", ["/staff/conversations", "/dashboard"])
async def test_a_bearer_header_with_a_raw_byte_is_401(make_live: MakeLive, path: str) -> None:
    live = await make_live()
    host, port = live.server.host, live.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n".encode()
        + b"Authorization: Bearer \xff\r\n\r\n"
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    assert status_line.split()[1] == b"401"


async def test_an_ad_click_is_credited_to_its_campaign(make_live: MakeLive) -> None:
    live = await make_live()
    w = live.waha
    ad = {"title": "DIU sem hormônio", "source": "ad", "id": "120210000000001",
          "url": "https://fb.me/abc"}  # fmt: skip
    await emit(live, w.text_message(PATIENT, "Olá! Quero mais informações", referral=ad))
    await emit(live, w.text_message("5511977770000@c.us", "vi o anuncio sobre a menopausa"))
    await live.settle()
    origins = {r["chat_id"]: r["origin"] for r in live.engine.store.query(
        "SELECT chat_id, origin FROM conversations")}  # fmt: skip
    assert origins == {PATIENT: "ig_diu", "5511977770000@c.us": "ig_menopausa"}


# -- try2 report F-m: a late edit is screened by the safety detector -------------------------

URGENT_EDIT = "to sangrando muito agora, encharcando o absorvente toda hora"
STAFF = "5511990000001@c.us"


async def _answered_diu_question(make_live: MakeLive) -> Live:
    live = await make_live(catalog=with_staff("+55 11 99000-0001"))
    await live.say(PATIENT, "oi quero saber do diu")
    await live.settle()
    assert live.sent_to(PATIENT) and live.engine.state_of(PATIENT)["status"] == "bot"
    return live


@pytest.mark.parametrize("form", ["message", "message.edited"])
async def test_a_late_urgent_edit_is_handled_like_a_new_urgent_message(
    make_live: MakeLive, form: str
) -> None:
    live = await _answered_diu_question(make_live)
    w = live.waha
    target = live.runtime.conn.execute("SELECT message_id FROM inbox ORDER BY id").fetchone()[0]
    answered = len(live.sent_to(PATIENT))
    edit = (
        w.edit_message(PATIENT, target, URGENT_EDIT)
        if form == "message"
        else w.edited_event(PATIENT, target, URGENT_EDIT)
    )
    await emit(live, edit, form)
    await live.settle()
    state = live.engine.state_of(PATIENT)
    assert state["status"] == "waiting_human" and state["urgent"] is True
    told = live.sent_to(PATIENT)[answered:]
    assert any("192" in text for text in told), told
    notices = live.sent_to(STAFF)
    assert len(notices) == 1 and "URGENTE" in notices[0], notices
    assert "Sangramento" in notices[0]  # the brief names what fired
    assert "message_edited" in events(live)


async def test_a_harmless_late_edit_stays_a_recorded_event(make_live: MakeLive) -> None:
    live = await _answered_diu_question(make_live)
    w = live.waha
    target = live.runtime.conn.execute("SELECT message_id FROM inbox ORDER BY id").fetchone()[0]
    sent = len(w.sent)
    await emit(live, w.edit_message(PATIENT, target, "oi, quero saber do diu por favor"))
    await live.settle()
    await asyncio.sleep(0.1)
    assert len(w.sent) == sent, [m["text"] for m in w.sent[sent:]]
    assert live.engine.state_of(PATIENT)["status"] == "bot"
    assert events(live).count("message_edited") == 1


@pytest.mark.parametrize("text", [URGENT_EDIT, "oi, quero saber do diu por favor"])
async def test_one_edit_delivered_both_ways_is_stored_once(make_live: MakeLive, text: str) -> None:
    live = await _answered_diu_question(make_live)
    w = live.waha
    target = live.runtime.conn.execute("SELECT message_id FROM inbox ORDER BY id").fetchone()[0]
    await emit(live, w.edit_message(PATIENT, target, text))
    await emit(live, w.edited_event(PATIENT, target, text), "message.edited")
    await live.settle()
    edits = [row for row in inbox_rows(live) if row[0] == "edit"]
    assert len(edits) == 1, edits
    assert events(live).count("message_edited") == 1
    assert len(live.sent_to(STAFF)) == (1 if text == URGENT_EDIT else 0)
