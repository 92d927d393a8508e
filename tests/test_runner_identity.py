"""One patient, one conversation, through the runner and the fake WAHA: a person behind
several WhatsApp ids (``@lid``, ``@c.us``, Brazil's ninth digit), staff on every id, and
human replies sent through WAHA by other tools."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from runner_harness import (  # noqa: F401 - fixtures
    STAFF_PHONE,
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

from clinicflow.runner.keys import CONFIG
from clinicflow.runner.staff_commands import HELP

PHONE = "5511987650003@c.us"
STAFF = (STAFF_PHONE, "5511990000002@c.us")  # the bundled clinic's two staff phones
LID = "208898765432109@lid"
T0 = 1_760_000_000


def conversations(live: Live) -> list[str]:
    rows = live.engine.store.query("SELECT chat_id FROM conversations ORDER BY chat_id")
    return [r["chat_id"] for r in rows]


def sent_texts(live: Live) -> list[tuple[str, str]]:
    return [(m["chatId"], m["text"]) for m in live.waha.sent]


async def emit(live: Live, payload: dict[str, Any], event: str = "message") -> None:
    assert await live.waha.emit(live.hook, event, payload, retries=0) == [200]


async def test_one_message_under_lid_and_phone_is_answered_once(make_live: MakeLive) -> None:
    # NOWEB delivers one message twice: under her lid and under her phone, same WhatsApp key.
    live = await make_live()
    w = live.waha
    lid, phone = "208812345678901@lid", "5511987650002@c.us"
    twins = [
        w.text_message(lid, "oi, bom dia", msg_id="3EB0AA01", timestamp=T0),
        w.text_message(phone, "oi, bom dia", msg_id="3EB0AA01", timestamp=T0),
    ]
    assert twins[0]["id"] == f"false_{lid}_3EB0AA01"
    assert twins[1]["id"] == f"false_{phone}_3EB0AA01"
    results = await asyncio.gather(*[w.emit(live.hook, "message", p, retries=0) for p in twins])
    assert results == [[200], [200]]
    await live.settle()
    assert len(conversations(live)) == 1
    [identity] = conversations(live)
    assert len(live.turns(identity)) == 1
    replies = live.engine.store.query("SELECT COUNT(*) AS n FROM messages WHERE direction = 'out'")[
        0
    ]["n"]
    assert len(w.sent) == replies > 0
    assert len({chat for chat, _ in sent_texts(live)}) == 1
    assert live.runtime.metrics.value("duplicates_dropped") == 1
    # Both ids now lead to her: a third copy under either id is a duplicate too.
    identities = live.runtime.inbox.identities
    assert identities.identity_of(lid) == identities.identity_of(phone) == identity


@pytest.mark.parametrize("engine", ["NOWEB", "GOWS"])
async def test_conversation_continues_when_she_writes_from_her_lid(
    make_live: MakeLive, engine: str
) -> None:
    live = await make_live()
    w = live.waha
    await emit(live, w.text_message(PHONE, "oi", engine=engine))
    await live.settle()
    first = len(w.sent)
    # Her reply comes from her lid, with her phone as the alternate id.
    later = w.lid_message(LID, "quero falar com uma atendente", phone=PHONE, engine=engine)
    await emit(live, later)
    await live.settle()
    if live.engine.state_of(PHONE)["status"] != "waiting_human":
        await emit(live, w.lid_message(LID, "falar com atendente humano", phone=PHONE,
                                       engine=engine))  # fmt: skip
        await live.settle()
    assert conversations(live) == [PHONE]  # one conversation, no second one under the lid
    assert live.engine.state_of(LID) is None
    assert live.engine.state_of(PHONE)["status"] == "waiting_human"
    assert live.engine.state_of(PHONE)["turns"] >= 2
    # Replies go to the id she last wrote from; the menu was not sent again.
    new = sent_texts(live)[first:]
    assert {chat for chat, _ in new if chat not in STAFF} == {LID}
    welcome = live.engine.catalog.clinic.text("welcome")
    assert not any(welcome in text for _, text in new)
    # The brief shows her phone, and the staff find her by it.
    [brief] = live.sent_to(STAFF_PHONE)
    assert "WhatsApp: +55 11 98765-0003" in brief
    assert "não disponível" not in brief
    await live.say(STAFF_PHONE, "#devolver (11) 98765-0003")
    await live.settle()
    assert live.engine.state_of(PHONE)["status"] == "bot"
    assert "devolvida" in live.sent_to(STAFF_PHONE)[-1]
    assert live.sent_to(LID)[-1] != live.sent_to(STAFF_PHONE)[-1]


async def test_a_lid_conversation_continues_when_her_phone_becomes_known(
    make_live: MakeLive,
) -> None:
    live = await make_live()
    w = live.waha
    await emit(live, w.text_message(LID, "oi"))  # no alternate id; WAHA does not know it
    await live.settle()
    lookups = [c for c in w.calls if "/lids/" in c.path]
    assert len(lookups) == 1 and lookups[0].status == 200
    assert conversations(live) == [LID]
    # Later she writes with her phone as the alternate id, then from the phone itself.
    await emit(live, w.lid_message(LID, "qual o endereço?", phone=PHONE))
    await live.settle()
    await emit(live, w.text_message(PHONE, "quero falar com uma atendente"))
    await live.settle()
    if live.engine.state_of(LID)["status"] != "waiting_human":
        await emit(live, w.text_message(PHONE, "falar com atendente humano"))
        await live.settle()
    assert conversations(live) == [LID]  # continued, not split
    assert live.engine.state_of(PHONE) is None
    assert live.sent_to(PHONE), "the reply goes to the id she last wrote from"
    assert "WhatsApp: +55 11 98765-0003" in live.sent_to(STAFF_PHONE)[-1]
    assert len([c for c in w.calls if "/lids/" in c.path]) == 1  # the answer was kept


async def test_waha_gives_the_phone_of_a_lid(make_live: MakeLive) -> None:
    live = await make_live()
    w = live.waha
    w.add_lid(LID, PHONE)
    await emit(live, w.text_message(LID, "oi"))
    await emit(live, w.text_message(LID, "qual o endereço?"))
    await live.settle()
    # Her conversation is kept under her phone; replies go to the lid she writes from.
    assert conversations(live) == [PHONE]
    assert live.sent_to(LID) and not live.sent_to(PHONE)
    lookups = [c for c in w.calls if "/lids/" in c.path]
    assert len(lookups) == 1 and lookups[0].path == "/api/default/lids/208898765432109@lid"
    assert live.runtime.inbox.identities.known_lid_phone(LID) == PHONE


async def test_waha_down_for_the_lookup_does_not_lose_the_message(make_live: MakeLive) -> None:
    live = await make_live()
    live.waha.fail_next(1, 500, "/api/default/lids/208898765432109@lid")
    await emit(live, live.waha.text_message(LID, "oi"))
    await live.settle()
    assert live.sent_to(LID)
    # Not cached: asked again next time.
    live.waha.add_lid(LID, PHONE)
    await emit(live, live.waha.text_message(LID, "qual o endereço?"))
    await live.settle()
    assert live.runtime.inbox.identities.phone_of(LID) == PHONE[:-5]


# -- staff on every id -------------------------------------------------------------------------

STAFF_9 = "5531999990003"  # configured with the ninth digit
STAFF_OLD_ID = "553199990003@c.us"  # WhatsApp account from before the ninth digit
STAFF_LID = "177000111222333@lid"


async def test_staff_without_the_ninth_digit_is_staff(make_live: MakeLive) -> None:
    live = await make_live(catalog=with_staff(STAFF_9))
    await live.say(STAFF_OLD_ID, "#ajuda")
    await live.settle()
    assert live.sent_to(STAFF_OLD_ID) == [HELP]
    assert conversations(live) == []
    await live.say(PHONE, "oi")
    await live.settle()
    mine = live.waha.text_message(PHONE, "deixa comigo", from_me=True)
    await emit(live, mine, "message.any")
    await live.settle()
    assert live.engine.state_of(PHONE)["status"] == "human"
    await live.say(STAFF_OLD_ID, "#devolver 31 98765-0003")  # wrong number: not found
    await live.settle()
    assert live.sent_to(STAFF_OLD_ID)[-1].startswith("❌")
    await live.say(STAFF_OLD_ID, "#devolver 11 98765-0003")  # no country code: BR
    await live.settle()
    assert live.engine.state_of(PHONE)["status"] == "bot"
    assert live.sent_to(STAFF_OLD_ID)[-1] == "✅ Conversa +55 11 98765-0003 devolvida ao robô."


@pytest.mark.parametrize("alt", [True, False], ids=["alternate-id", "waha-lookup"])
async def test_staff_writing_from_a_lid_is_staff(make_live: MakeLive, alt: bool) -> None:
    live = await make_live(catalog=with_staff(STAFF_9))
    w = live.waha
    if alt:
        payload = w.lid_message(STAFF_LID, "#ajuda", phone=f"{STAFF_9}@c.us")
    else:
        w.add_lid(STAFF_LID, STAFF_OLD_ID)
        payload = w.text_message(STAFF_LID, "#ajuda")
    await emit(live, payload)
    await live.settle()
    assert live.sent_to(STAFF_LID) == [HELP]
    assert conversations(live) == []


async def test_a_staff_note_is_not_a_patient_message(make_live: MakeLive) -> None:
    live = await make_live(catalog=with_staff(STAFF_9, "+55 (11) 99000-0001"))
    await live.say(STAFF_OLD_ID, "Bom dia, chego 8h15 hoje")
    await live.say("5511990000001@c.us", "Hoje não tem café")
    await asyncio.sleep(0.2)
    await live.settle()
    assert live.waha.sent == []  # no reply, no hand-off to herself
    assert conversations(live) == []
    statuses = [r[0] for r in live.runtime.conn.execute("SELECT status FROM inbox")]
    assert statuses == ["ignored", "ignored"]
    # Without the "#", a command word still works.
    await live.say(STAFF_OLD_ID, "ajuda")
    await live.settle()
    assert live.sent_to(STAFF_OLD_ID) == [HELP]


async def test_handoff_notice_goes_to_a_well_formed_chat_id(make_live: MakeLive) -> None:
    live = await make_live(catalog=with_staff("+55 (11) 99000-0001"))
    await live.say(PHONE, "quero falar com uma atendente")
    await live.settle()
    if live.engine.state_of(PHONE)["status"] != "waiting_human":
        await live.say(PHONE, "falar com atendente humano por favor")
        await live.settle()
    to_staff = [m for m in live.waha.sent if m["chatId"] != PHONE]
    assert [m["chatId"] for m in to_staff] == ["5511990000001@c.us"]  # one brief, well formed


async def test_devolver_finds_her_under_any_form(make_live: MakeLive) -> None:
    live = await make_live()
    w = live.waha
    w.add_lid(LID, None)
    await emit(live, w.text_message(LID, "oi"))
    await live.settle()
    await emit(live, w.lid_message(LID, "tudo bem?", phone=PHONE))
    await live.settle()
    for form in ("5511987650003", "+55 11 98765-0003", "11 98765-0003", LID, PHONE,
                 "208898765432109"):  # fmt: skip
        mine = w.text_message(LID, "deixa comigo", from_me=True)
        await emit(live, mine, "message.any")
        await live.settle()
        assert live.engine.state_of(LID)["status"] == "human"
        await live.say(STAFF_PHONE, f"#devolver {form}")
        await live.settle()
        assert live.engine.state_of(LID)["status"] == "bot", form
        assert "devolvida" in live.sent_to(STAFF_PHONE)[-1]
    # The staff API finds her under her phone too.
    auth = {"Authorization": "Bearer staff-secret"}
    async with live.http.get(live.url(f"/staff/conversations/{PHONE}"), headers=auth) as r:
        assert r.status == 200
        assert (await r.json())["conversation"]["chat_id"] == LID


# -- a human reply through another tool ---------------------------------------------------------


async def test_a_reply_sent_through_waha_by_another_tool_pauses_the_bot(
    make_live: MakeLive,
) -> None:
    live = await make_live()
    w = live.waha
    await live.say(PHONE, "oi")
    await live.settle()
    # Our own API send, echoed with the id WAHA gave us: ignored.
    echo = w.text_message(PHONE, live.sent_to(PHONE)[0], msg_id=w.sent_ids[0], from_me=True,
                          source="api")  # fmt: skip
    await emit(live, echo, "message.any")
    # The same echo under her lid (same WhatsApp key): still ours.
    key = w.sent_ids[1].split("_")[-1]
    echo_lid = w.lid_message(LID, live.sent_to(PHONE)[1], phone=PHONE, msg_id=key,
                             from_me=True, source="api")  # fmt: skip
    await emit(live, echo_lid, "message.any")
    await live.settle()
    assert live.engine.state_of(PHONE)["status"] == "bot"
    # Chatwoot / n8n / the WAHA dashboard: fromMe, source "api", not in our outbox.
    human = w.text_message(PHONE, "Oi! Aqui é a Rita, vou te ajudar", from_me=True, source="api")
    await emit(live, human, "message.any")
    await live.settle()
    assert live.engine.state_of(PHONE)["status"] == "human"
    before = len(w.sent)
    await live.say(PHONE, "quero marcar uma consulta")
    await live.settle()
    assert len(w.sent) == before


# -- logs ----------------------------------------------------------------------------------------


async def test_logs_carry_pseudonyms_not_phone_numbers(
    make_live: MakeLive, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="clinicflow.runner")
    live = await make_live()
    await live.say(PHONE, "quero falar com uma atendente")
    await live.settle()
    await live.say(PHONE, "falar com atendente humano por favor")
    await live.settle()
    await live.say(STAFF_PHONE, "#devolver 11 98765-0003")
    await live.settle()
    lines = [r.getMessage() for r in caplog.records if r.name == "clinicflow.runner"]
    text = "\n".join(lines)
    assert "event=inbound" in text and "event=turn" in text and "event=handoff" in text
    assert "event=staff_action" in text
    for digits in ("987650003", "98765", "990000001"):
        assert digits not in text
    alias = live.runtime.alias(PHONE)
    assert alias.startswith("chat-") and f"chat={alias}" in text
    assert (live.app[CONFIG].data_dir / "log_key").exists()  # the same pseudonyms next start
