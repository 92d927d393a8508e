"""One person behind several WhatsApp ids: identities, the inbox's dedupe on WhatsApp's key,
edits and revokes at the door, WAHA's lid lookup (clinicflow.identity, clinicflow.inbox)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from clinicflow.errors import ChannelError
from clinicflow.identity import Identities, Person, Resolver, StaffIds
from clinicflow.inbox import Inbox
from clinicflow.storage import connect
from clinicflow.testing.fake_waha import FakeWaha
from clinicflow.testing.waha_messages import MessageBuilder
from clinicflow.testing.waha_webhooks import envelope, webhook_request
from clinicflow.waha import WahaClient
from clinicflow.webhooks import Inbound, parse_webhook

PHONE = "5511987650003@c.us"
LID = "208898765432109@lid"
B = MessageBuilder("NOWEB")


def inbound(payload: dict[str, object], event: str = "message") -> Inbound:
    parsed = parse_webhook(webhook_request(envelope(event, payload)).body)
    assert isinstance(parsed, Inbound)
    return parsed


@pytest.fixture
def inbox(tmp_path: Path) -> Iterator[Inbox]:
    conn = connect(tmp_path / "db.sqlite")
    yield Inbox(conn)
    conn.close()


def store(inbox: Inbox, message: Inbound) -> tuple[bool, Person]:
    person = inbox.identities.resolve(message.chat_id, (message.alt_chat_id,))
    return inbox.add(message, person=person), person


def test_a_new_person_is_kept_under_her_phone(inbox: Inbox) -> None:
    ok, person = store(inbox, inbound(B.lid_message(LID, "oi", phone=PHONE)))
    assert ok and person == Person(PHONE, "5511987650003", LID, (LID, PHONE))
    ids = inbox.identities
    assert ids.identity_of(LID) == ids.identity_of(PHONE) == PHONE
    assert ids.reply_to(PHONE) == LID and ids.phone_of(PHONE) == "5511987650003"
    [row] = inbox.pending()
    assert row.chat_id == PHONE and row.meta["from"] == LID


def test_a_lid_conversation_keeps_its_identity_when_the_phone_shows_up(inbox: Inbox) -> None:
    store(inbox, inbound(B.text_message(LID, "oi")))
    assert inbox.identities.phone_of(LID) is None
    _, later = store(inbox, inbound(B.lid_message(LID, "de novo", phone=PHONE)))
    assert later.identity == LID and later.phone == "5511987650003"
    _, direct = store(inbox, inbound(B.text_message(PHONE, "pelo número")))
    assert direct.identity == LID and direct.reply_to == PHONE
    assert inbox.identities.reply_to(LID) == PHONE
    assert inbox.identities.ids_of(LID) == [LID, PHONE]
    assert {row.chat_id for row in inbox.pending()} == {LID}


def test_the_same_message_under_two_ids_is_stored_once(inbox: Inbox) -> None:
    lid_copy = inbound(B.text_message("208812345678901@lid", "oi", msg_id="3EB0AA01"))
    phone_copy = inbound(B.text_message("5511987650002@c.us", "oi", msg_id="3EB0AA01"))
    assert lid_copy.wa_key == phone_copy.wa_key == "3EB0AA01"
    assert lid_copy.message_id != phone_copy.message_id
    assert store(inbox, lid_copy)[0] is True
    assert store(inbox, phone_copy)[0] is False
    # The twin id was learnt: she is one person now.
    assert inbox.identities.identity_of("5511987650002@c.us") == "208812345678901@lid"
    assert inbox.identities.phone_of("208812345678901@lid") == "5511987650002"
    assert len(inbox.pending()) == 1


def test_two_phones_whose_keys_collide_are_two_messages(inbox: Inbox) -> None:
    one = inbound(B.text_message(PHONE, "oi", msg_id="AAAA"))
    two = inbound(B.text_message("5511977776666@c.us", "oi", msg_id="AAAA"))
    assert store(inbox, one)[0] and store(inbox, two)[0]
    assert inbox.identities.identity_of("5511977776666@c.us") == "5511977776666@c.us"
    # The same key under the same person (another event name) is the same message.
    assert (
        store(inbox, inbound(B.text_message(PHONE, "oi", msg_id="AAAA"), "message.any"))[0] is False
    )


def test_a_takeover_does_not_move_the_replies(inbox: Inbox) -> None:
    store(inbox, inbound(B.text_message(LID, "oi")))
    echo = inbound(B.text_message(PHONE, "eu", from_me=True), "message.any")
    person = inbox.identities.resolve(echo.chat_id, (LID,))
    assert inbox.add(echo, kind="takeover", person=person)
    assert inbox.identities.reply_to(LID) == LID


def test_an_edit_replaces_a_waiting_message(inbox: Inbox) -> None:
    original = B.text_message(PHONE, "qual o valro?")
    store(inbox, inbound(original))
    edit = inbound(B.edit_message(PHONE, original["id"], "qual o valor?"))
    assert edit.kind == "edit" and edit.target_key == original["id"].split("_")[-1]
    assert store(inbox, edit)[0]
    rows = {row.kind: row for row in inbox.pending()}
    assert rows["text"].text == "qual o valor?"
    assert rows["text"].meta["edited_from"] == "qual o valro?"
    assert "edit" not in rows  # applied: nothing left to do
    # An encrypted edit cannot be applied (the new text is unknown): kept for the record.
    secret = inbound(B.edit_message(PHONE, original["id"], "x", encrypted=True), "message.any")
    assert secret.kind == "edit" and secret.text == ""
    store(inbox, secret)
    assert [row.kind for row in inbox.pending()] == ["text", "edit"]


def test_an_edit_of_someone_elses_message_changes_nothing(inbox: Inbox) -> None:
    original = B.text_message(PHONE, "oi")
    store(inbox, inbound(original))
    other = "5511977776666@c.us"
    store(inbox, inbound(B.edit_message(other, original["id"], "tchau")))
    assert [row.text for row in inbox.pending() if row.kind == "text"] == ["oi"]


def test_a_revoke_of_a_waiting_message_marks_it(inbox: Inbox) -> None:
    original = B.text_message(PHONE, "errei de conversa")
    store(inbox, inbound(original))
    revoke = inbound(B.revoke_message(PHONE, original["id"]))
    assert revoke.kind == "revoke"
    store(inbox, revoke)
    assert inbox.pending() == []
    row = inbox.by_key("default", original["id"].split("_")[-1], PHONE)
    assert row is not None and row.status == "revoked" and row.text == "errei de conversa"


def test_an_old_data_dir_keeps_each_chat_as_its_own_person(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db.sqlite")
    with conn:
        conn.execute(
            "CREATE TABLE inbox (id INTEGER PRIMARY KEY, session TEXT NOT NULL, message_id TEXT "
            "NOT NULL, envelope_id TEXT, chat_id TEXT NOT NULL, timestamp REAL NOT NULL DEFAULT "
            "0, text TEXT NOT NULL DEFAULT '', kind TEXT NOT NULL DEFAULT 'text', meta TEXT NOT "
            "NULL DEFAULT '{}', status TEXT NOT NULL DEFAULT 'received', batch_id TEXT, "
            "received_at REAL NOT NULL, processed_at REAL, UNIQUE (session, message_id))"
        )
        conn.execute(
            "INSERT INTO inbox (session, message_id, chat_id, received_at, status) "
            "VALUES ('default', 'false_x', ?, 1, 'done')",
            (LID,),
        )
    inbox = Inbox(conn)
    _, person = store(inbox, inbound(B.lid_message(LID, "voltei", phone=PHONE)))
    assert person.identity == LID  # her old conversation continues


def test_staff_on_every_form_of_their_id(inbox: Inbox) -> None:
    staff = StaffIds(["5531999990003", "+55 (11) 99000-0001"])
    assert staff.chat_ids >= {"5531999990003@c.us", "553199990003@c.us", "5511990000001@c.us"}
    old = inbox.identities.resolve("553199990003@c.us")
    assert staff.matches(old)
    lid = inbox.identities.resolve("177000111222333@lid", ("5531999990003@c.us",))
    assert staff.matches(lid)
    assert not staff.matches(inbox.identities.resolve(PHONE))
    assert not StaffIds([])


def test_find_a_person_by_any_form(inbox: Inbox) -> None:
    store(inbox, inbound(B.text_message(LID, "oi")))
    store(inbox, inbound(B.lid_message(LID, "oi", phone=PHONE)))
    ids = inbox.identities
    for text in ("5511987650003", "+55 (11) 98765-0003", "11 98765-0003", LID, PHONE,
                 "208898765432109", "5511987650003@s.whatsapp.net"):  # fmt: skip
        assert ids.find(text) == LID, text
    assert ids.find("11 91111-2222") is None
    assert ids.find("../../etc@c.us") is None


async def test_resolver_asks_waha_once_and_remembers(inbox: Inbox) -> None:
    asked: list[str] = []
    answers = {LID: PHONE}
    now = [1000.0]

    async def lookup(lid: str) -> str | None:
        asked.append(lid)
        return answers.get(lid)

    resolver = Resolver(inbox.identities, lookup, lambda: now[0], retry_s=60)
    person = await resolver.resolve(LID)
    assert person.identity == PHONE and person.phone == "5511987650003"
    assert (await resolver.resolve(LID)).identity == PHONE
    assert asked == [LID]
    # A hidden number is asked again only after retry_s.
    hidden = "177000000000001@lid"
    assert (await resolver.resolve(hidden)).identity == hidden
    await resolver.resolve(hidden)
    now[0] += 61
    await resolver.resolve(hidden)
    assert asked == [LID, hidden, hidden]
    # The alternate id in the payload spares the lookup.
    await resolver.resolve("177000000000002@lid", "5511911112222@c.us")
    assert len(asked) == 3
    # The cache lives in SQLite: a new Identities on the same file knows it.
    again = Identities(inbox.conn)
    assert again.known_lid_phone(LID) == PHONE


async def test_resolver_goes_on_when_waha_fails_or_is_slow(inbox: Inbox) -> None:
    async def broken(lid: str) -> str | None:
        raise ChannelError("down")

    async def slow(lid: str) -> str | None:
        await asyncio.sleep(5)
        return PHONE

    for lookup in (broken, slow):
        resolver = Resolver(inbox.identities, lookup, lambda: 0.0, timeout_s=0.05)
        assert (await resolver.resolve(LID)).identity == LID
    assert inbox.identities.lookup_due(LID, 0.0, 60)  # nothing cached: asked next time
    assert (await Resolver(inbox.identities, None, lambda: 0.0).resolve(LID)).identity == LID


async def test_lid_phone_through_the_fake_waha() -> None:
    async with FakeWaha(api_key="k") as fake, WahaClient(fake.url, "k") as client:
        fake.add_lid(LID, PHONE)
        assert await client.lid_phone(LID) == PHONE
        assert await client.lid_phone("177000000000001@lid") is None
        fake.add_lid("208898765432110", None)
        assert await client.lid_phone("208898765432110@lid") is None
        fake.fail_next(1, 500)
        with pytest.raises(ChannelError):
            await client.lid_phone(LID)
