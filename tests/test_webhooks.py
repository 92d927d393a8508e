"""Tests for clinicflow.webhooks: HMAC, chat ids, the three engines' payloads, hostile input."""

from __future__ import annotations

import contextlib
import json
import random
from pathlib import Path
from typing import Any

import pytest

from clinicflow.errors import WebhookError
from clinicflow.testing.waha_messages import MessageBuilder
from clinicflow.testing.waha_webhooks import envelope, webhook_request
from clinicflow.webhooks import (
    Ignored,
    Inbound,
    SessionStatus,
    chat_kind,
    is_patient_chat,
    normalize_chat_id,
    parse_webhook,
    verify_hmac,
)

PATIENT = "5511988887777@c.us"
ME = "5511900000000@c.us"
ENGINES = ["NOWEB", "GOWS", "WEBJS"]


def _raw(event: str, payload: Any, engine: str = "NOWEB", **extra: Any) -> bytes:
    env: dict[str, Any] = {"event": event, "session": "default", "engine": engine}
    env["me"] = {"id": ME, "pushName": "Clínica"}
    env["payload"] = payload
    env.update(extra)
    return json.dumps(env).encode()


def _inbound(raw: bytes) -> Inbound:
    result = parse_webhook(raw)
    assert isinstance(result, Inbound)
    return result


def _built(payload: dict[str, Any], event: str = "message", engine: str = "NOWEB") -> Inbound:
    return _inbound(webhook_request(envelope(event, payload, engine=engine)).body)


# -- HMAC ------------------------------------------------------------------------------------

OFFICIAL_BODY = b'{"event":"message","session":"default","engine":"WEBJS"}'
OFFICIAL_SIG = (
    "208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8"
    "097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89"
)


def test_hmac_official_vector() -> None:
    assert verify_hmac(OFFICIAL_BODY, "my-secret-key", OFFICIAL_SIG)
    assert verify_hmac(OFFICIAL_BODY, "my-secret-key", OFFICIAL_SIG.upper())


@pytest.mark.parametrize(
    ("body", "key", "signature"),
    [
        pytest.param(OFFICIAL_BODY, "my-secret-key", None, id="missing"),
        pytest.param(OFFICIAL_BODY, "my-secret-key", "", id="empty"),
        pytest.param(OFFICIAL_BODY, "other-key", OFFICIAL_SIG, id="wrong-key"),
        pytest.param(OFFICIAL_BODY + b" ", "my-secret-key", OFFICIAL_SIG, id="body-changed"),
        pytest.param(OFFICIAL_BODY, "my-secret-key", OFFICIAL_SIG[:-2], id="truncated"),
        pytest.param(OFFICIAL_BODY, "my-secret-key", "é" * 128, id="non-ascii"),
        pytest.param(OFFICIAL_BODY, "", OFFICIAL_SIG, id="no-key"),
    ],
)
def test_hmac_rejects(body: bytes, key: str, signature: str | None) -> None:
    assert not verify_hmac(body, key, signature)


def test_hmac_matches_what_the_fake_signs() -> None:
    request = webhook_request(envelope("message", {"id": "x"}), hmac_key="segredo")
    assert request.headers["X-Webhook-Hmac-Algorithm"] == "sha512"
    assert verify_hmac(request.body, "segredo", request.headers["X-Webhook-Hmac"])


# -- chat ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chat_id", "kind", "patient"),
    [
        pytest.param("5511988887777@c.us", "direct", True, id="c.us"),
        pytest.param("5511988887777@s.whatsapp.net", "direct", True, id="s.whatsapp.net"),
        pytest.param("176369157804064@lid", "lid", True, id="lid"),
        pytest.param("120363041234567890@g.us", "group", False, id="group"),
        pytest.param("status@broadcast", "status", False, id="status"),
        pytest.param("1234567@broadcast", "broadcast", False, id="broadcast-list"),
        pytest.param("120363000000000000@newsletter", "newsletter", False, id="newsletter"),
        pytest.param("5511988887777", "unknown", False, id="no-suffix"),
        pytest.param("@c.us", "unknown", False, id="no-user"),
        pytest.param("a@b@c.us", "unknown", False, id="two-ats"),
        pytest.param("123@example.com", "unknown", False, id="foreign"),
        pytest.param("", "unknown", False, id="empty"),
    ],
)
def test_chat_kind(chat_id: str, kind: str, patient: bool) -> None:
    assert chat_kind(chat_id) == kind
    assert is_patient_chat(chat_id) is patient


def test_chat_kind_tolerates_non_strings() -> None:
    assert chat_kind(None) == "unknown"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("jid", "expected"),
    [
        ("5511988887777@s.whatsapp.net", "5511988887777@c.us"),
        ("7111:12@s.whatsapp.net", "7111@c.us"),
        ("123:4@lid", "123@lid"),
        ("120363@g.us", "120363@g.us"),
        ("plain", "plain"),
    ],
)
def test_normalize_chat_id(jid: str, expected: str) -> None:
    assert normalize_chat_id(jid) == expected


# -- message payloads, hand-written from WAHA's documented shapes -----------------------------


def test_noweb_incoming_text() -> None:
    payload = {
        "id": f"false_{PATIENT}_3EB0AAA",
        "timestamp": 1741249702,
        "from": PATIENT,
        "fromMe": False,
        "source": "app",
        "to": None,
        "participant": None,
        "body": "Oi, queria marcar consulta",
        "hasMedia": False,
        "media": None,
        "ack": 1,
        "ackName": "SERVER",
        "_data": {
            "key": {"remoteJid": "5511988887777@s.whatsapp.net", "fromMe": False, "id": "3EB0AAA"},
            "pushName": "Maria",
            "message": {"conversation": "Oi, queria marcar consulta"},
        },
    }
    inbound = _inbound(_raw("message", payload, id="evt_01jyewpavw2ns6gc9j48ta562t"))
    assert inbound.event == "message"
    assert inbound.session == "default"
    assert inbound.envelope_id == "evt_01jyewpavw2ns6gc9j48ta562t"
    assert inbound.message_id == f"false_{PATIENT}_3EB0AAA"
    assert inbound.chat_id == PATIENT
    assert not inbound.from_me
    assert inbound.timestamp == 1741249702.0
    assert inbound.text == "Oi, queria marcar consulta"
    assert inbound.kind == "text"
    assert inbound.push_name == "Maria"
    assert inbound.media_url is None and not inbound.media_error
    assert inbound.referral is None and inbound.alt_chat_id is None
    assert inbound.raw_payload == payload
    assert inbound.engine == "NOWEB"


def test_old_waha_without_envelope_id_or_engine() -> None:
    payload = {
        "id": "false_5511912345678@c.us_A",
        "from": "5511912345678@c.us",
        "body": None,
        "timestamp": "1700000000",
    }
    raw = json.dumps({"event": "message", "session": "s", "payload": payload}).encode()
    inbound = _inbound(raw)
    assert inbound.envelope_id is None and inbound.engine is None
    assert inbound.text == ""
    assert inbound.kind == "protocol"  # nothing in it: never answered as media
    assert inbound.timestamp == 1700000000.0


def test_webjs_own_message_uses_to_as_chat() -> None:
    payload = {
        "id": f"true_{PATIENT}_3A1B",
        "timestamp": 1741249702,
        "from": ME,
        "fromMe": True,
        "source": "app",
        "to": PATIENT,
        "body": "Oi Maria, aqui é a Júlia",
        "_data": {"id": {"fromMe": True, "remote": PATIENT, "id": "3A1B"}, "type": "chat"},
    }
    inbound = _inbound(_raw("message.any", payload, engine="WEBJS"))
    assert inbound.chat_id == PATIENT
    assert inbound.from_me and inbound.source == "app"
    # Even without an engine name, `from` equal to us (or `_data.id.remote`) gives it away.
    raw = json.dumps({"event": "message.any", "session": "default", "payload": payload})
    assert _inbound(raw.encode()).chat_id == PATIENT
    del payload["to"]
    assert _inbound(_raw("message.any", payload, engine="WEBJS")).chat_id == PATIENT


def test_noweb_own_message_keeps_from() -> None:
    payload = {"id": f"true_{PATIENT}_3EB0", "from": PATIENT, "fromMe": True, "source": "api"}
    payload |= {"to": None, "timestamp": 1.5, "body": "Resposta do bot"}
    inbound = _inbound(_raw("message.any", payload))
    assert inbound.chat_id == PATIENT
    assert inbound.source == "api"
    assert inbound.timestamp == 1.5


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("source", ["api", "app"])
def test_every_engine_own_messages_point_at_the_patient(engine: str, source: str) -> None:
    payload = MessageBuilder(engine).text_message(PATIENT, "ok", from_me=True, source=source)
    inbound = _built(payload, "message.any", engine)
    assert (inbound.chat_id, inbound.from_me, inbound.source) == (PATIENT, True, source)
    assert inbound.message_id.startswith(f"true_{PATIENT}_")


@pytest.mark.parametrize("engine", ENGINES)
def test_every_engine_incoming_text(engine: str) -> None:
    payload = MessageBuilder(engine).text_message(PATIENT, "Bom dia! 🌸", push_name="Maria")
    inbound = _built(payload, engine=engine)
    assert (inbound.chat_id, inbound.text, inbound.kind) == (PATIENT, "Bom dia! 🌸", "text")
    assert inbound.push_name == "Maria"
    assert inbound.message_id.startswith(f"false_{PATIENT}_3EB0")


@pytest.mark.parametrize("engine", ENGINES)
def test_lid_chat_with_phone_twin(engine: str) -> None:
    lid = "176369157804064@lid"
    payload = MessageBuilder(engine).text_message(lid, "oi", alt_chat_id=PATIENT)
    inbound = _built(payload, engine=engine)
    assert inbound.chat_id == lid and is_patient_chat(inbound.chat_id)
    assert inbound.message_id.startswith(f"false_{lid}_")
    assert inbound.alt_chat_id == (None if engine == "WEBJS" else PATIENT)


@pytest.mark.parametrize("engine", ENGINES)
def test_group_status_and_newsletter_are_not_patient_chats(engine: str) -> None:
    builder = MessageBuilder(engine)
    group = _built(builder.group_message("120363041234567890@g.us", "oi"), engine=engine)
    assert group.chat_id == "120363041234567890@g.us" and chat_kind(group.chat_id) == "group"
    assert group.participant == "5511977776666@c.us"
    assert group.message_id.endswith("_5511977776666@c.us")
    status = _built(builder.status_message("promo"), engine=engine)
    assert chat_kind(status.chat_id) == "status"
    news = _built(builder.newsletter_message("novidade"), engine=engine)
    assert chat_kind(news.chat_id) == "newsletter"
    assert not any(is_patient_chat(m.chat_id) for m in (group, status, news))


# -- kinds, voice and media ------------------------------------------------------------------


@pytest.mark.parametrize("engine", ENGINES)
def test_voice_note_per_engine(engine: str) -> None:
    inbound = _built(MessageBuilder(engine).voice_message(PATIENT), engine=engine)
    assert inbound.kind == "voice"
    assert inbound.media_mimetype == "audio/ogg; codecs=opus"
    assert inbound.media_url and inbound.media_url.endswith(".oga")
    assert inbound.text == "" and not inbound.media_error


def _media_payload(data: dict[str, Any], mimetype: str | None, body: str = "") -> dict[str, Any]:
    media = {"url": "http://w/api/files/default/x.bin", "mimetype": mimetype, "error": None}
    return {
        "id": "false_5511912345678@c.us_A",
        "from": "5511912345678@c.us",
        "body": body,
        "hasMedia": True,
    } | {
        "media": media,
        "_data": data,
    }


@pytest.mark.parametrize(
    ("data", "mimetype", "body", "kind"),
    [
        pytest.param({"type": "ptt"}, "audio/ogg; codecs=opus", "", "voice", id="webjs-ptt"),
        pytest.param({"type": "audio"}, "audio/ogg; codecs=opus", "", "audio", id="webjs-audio"),
        pytest.param(
            {"message": {"audioMessage": {"ptt": True}}}, "audio/ogg", "", "voice", id="noweb-ptt"
        ),
        pytest.param(
            {"message": {"audioMessage": {"ptt": False}}}, "audio/mpeg", "", "audio", id="noweb"
        ),
        pytest.param(
            {"message": {"ephemeralMessage": {"message": {"audioMessage": {"ptt": True}}}}},
            "audio/ogg",
            "",
            "voice",
            id="noweb-ephemeral-ptt",
        ),
        pytest.param(
            {"Message": {"audioMessage": {"PTT": True}}}, "audio/ogg", "", "voice", id="gows-PTT"
        ),
        pytest.param({}, "audio/ogg; codecs=opus", "", "voice", id="mimetype-only"),
        pytest.param({}, "audio/ogg; codecs=opus", "legenda", "audio", id="ogg-with-body"),
        pytest.param({}, "audio/mp4", "", "audio", id="mp4-audio"),
        pytest.param({"type": "image"}, "image/jpeg", "foto", "image", id="webjs-image"),
        pytest.param({}, "image/jpeg", "", "image", id="jpeg"),
        pytest.param({}, "image/webp", "", "sticker", id="webp"),
        pytest.param({}, "video/mp4", "", "video", id="video"),
        pytest.param({}, "application/pdf", "", "document", id="pdf"),
        pytest.param({"message": {"stickerMessage": {}}}, None, "", "sticker", id="noweb-sticker"),
        pytest.param(
            {"message": {"documentMessage": {}}}, "application/pdf", "", "document", id="noweb-doc"
        ),
    ],
)
def test_kind_detection(data: dict[str, Any], mimetype: str | None, body: str, kind: str) -> None:
    assert _inbound(_raw("message", _media_payload(data, mimetype, body))).kind == kind


def test_location_and_contact_kinds() -> None:
    location = MessageBuilder("NOWEB").location_message(PATIENT)
    assert _built(location).kind == "location"
    webjs_location = MessageBuilder("WEBJS").location_message(PATIENT)
    assert _built(webjs_location, engine="WEBJS").kind == "location"
    payload = {
        "id": "false_5511912345678@c.us_A",
        "from": "5511912345678@c.us",
        "body": "",
        "vCards": ["BEGIN:VCARD"],
    }
    assert _inbound(_raw("message", payload)).kind == "contact"
    bare = {
        "id": "false_5511912345678@c.us_A",
        "from": "5511912345678@c.us",
        "location": {"latitude": "1"},
    }
    assert _inbound(_raw("message", bare)).kind == "location"


@pytest.mark.parametrize("engine", ENGINES)
def test_image_with_caption(engine: str) -> None:
    inbound = _built(MessageBuilder(engine).image_message(PATIENT, "minha receita"), engine=engine)
    assert (inbound.kind, inbound.text, inbound.media_mimetype) == (
        "image",
        "minha receita",
        "image/jpeg",
    )


def test_failed_and_skipped_downloads_are_media_errors() -> None:
    failed = _built(MessageBuilder().voice_message(PATIENT, downloaded=False))
    assert failed.kind == "voice" and failed.media_url is None and failed.media_error
    skipped = {
        "id": "false_5511912345678@c.us_A",
        "from": "5511912345678@c.us",
        "hasMedia": True,
        "media": None,
    }
    assert _inbound(_raw("message", skipped)).media_error
    legacy = {
        "id": "false_5511912345678@c.us_A",
        "from": "5511912345678@c.us",
        "hasMedia": True,
        "mediaUrl": "http://x",
    }
    assert _inbound(_raw("message", legacy)).media_url == "http://x"


# -- referral --------------------------------------------------------------------------------

AD = {"source": "ad", "title": "DIU com 20% off", "url": "https://fb.me/abc", "id": "12023"}


@pytest.mark.parametrize("engine", ENGINES)
def test_click_to_whatsapp_referral(engine: str) -> None:
    payload = MessageBuilder(engine).text_message(PATIENT, "Vi o anúncio", referral=AD)
    inbound = _built(payload, engine=engine)
    assert inbound.referral is not None
    assert {k: inbound.referral[k] for k in AD} == AD
    assert inbound.text == "Vi o anúncio" and inbound.kind == "text"


def test_referral_from_conversion_source_only() -> None:
    context = {"conversionSource": "FB_Ads", "entryPointConversionSource": None}
    data = {"message": {"extendedTextMessage": {"text": "oi", "contextInfo": context}}}
    payload = {
        "id": "false_5511912345678@c.us_A",
        "from": "5511912345678@c.us",
        "body": "oi",
        "_data": data,
    }
    assert _inbound(_raw("message", payload)).referral == {"source": "FB_Ads"}


def test_ordinary_reply_context_is_not_a_referral() -> None:
    context = {"stanzaId": "3EB0", "quotedMessage": {"conversation": "x"}}
    data = {"message": {"extendedTextMessage": {"text": "oi", "contextInfo": context}}}
    payload = {
        "id": "false_5511912345678@c.us_A",
        "from": "5511912345678@c.us",
        "body": "oi",
        "_data": data,
    }
    assert _inbound(_raw("message", payload)).referral is None


# -- other events ----------------------------------------------------------------------------


def test_session_status() -> None:
    payload = {"name": "default", "status": "WORKING", "statuses": []}
    assert parse_webhook(_raw("session.status", payload)) == SessionStatus("default", "WORKING")


@pytest.mark.parametrize(
    "event",
    ["message.ack", "message.revoked", "message.edited", "message.reaction", "presence.update"],
)
def test_unhandled_events_are_ignored(event: str) -> None:
    result = parse_webhook(_raw(event, {"id": "x"}))
    assert isinstance(result, Ignored) and result.event == event
    assert isinstance(parse_webhook(_raw(event, None)), Ignored)


# -- refusals --------------------------------------------------------------------------------


def test_oversized_body_is_413() -> None:
    with pytest.raises(WebhookError) as info:
        parse_webhook(b" " * 11, max_bytes=10)
    assert info.value.status == 413 and not info.value.retryable


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"{", id="truncated"),
        pytest.param(b"\xff\xfe\x00", id="not-utf8"),
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'"message"', id="string"),
        pytest.param(b"{}", id="no-event"),
        pytest.param(b'{"event": 5}', id="event-not-string"),
        pytest.param(b'{"event": "message", "payload": {"id": "a", "from": "b"}}', id="no-session"),
        pytest.param(b'{"event": "message", "session": "s"}', id="no-payload"),
        pytest.param(b'{"event": "message", "session": "s", "payload": []}', id="payload-list"),
        pytest.param(_raw("message", {"from": "5511912345678@c.us"}), id="no-id"),
        pytest.param(_raw("message", {"id": "x", "from": 5}), id="from-not-string"),
        pytest.param(_raw("message.any", {"id": "", "from": "5511912345678@c.us"}), id="empty-id"),
        pytest.param(_raw("session.status", {"status": None}), id="status-missing"),
        pytest.param(b'{"event": "message", "x": NaN}', id="nan"),
        pytest.param(b"[" * 50_000 + b"]" * 50_000, id="deep-nesting"),
        pytest.param(b'{"event": "message", "n": ' + b"9" * 5000 + b"}", id="huge-int"),
    ],
)
def test_malformed_bodies_are_400(raw: bytes) -> None:
    with pytest.raises(WebhookError) as info:
        parse_webhook(raw)
    assert info.value.status == 400
    assert str(info.value)


def _junk(rng: random.Random, depth: int = 0) -> Any:
    choices: list[Any] = [
        None,
        True,
        0,
        -1,
        10**30,
        1e308,
        -0.0,
        "",
        "x" * rng.randint(0, 3000),
        "@",
        "status@broadcast",
        "😀\u0000\ud800",
        "true_1@c.us_A",
    ]
    if depth < 4:
        choices += [
            [_junk(rng, depth + 1) for _ in range(rng.randint(0, 3))],
            {rng.choice(_KEYS): _junk(rng, depth + 1) for _ in range(rng.randint(0, 5))},
        ]
    return rng.choice(choices)


_KEYS = [
    "id", "from", "to", "fromMe", "source", "body", "timestamp", "media", "hasMedia",
    "mediaUrl", "_data", "type", "message", "Message", "Info", "key", "audioMessage", "ptt",
    "PTT", "contextInfo", "externalAdReply", "ctwaContext", "remoteJidAlt", "SenderAlt",
    "notifyName", "pushName", "PushName", "location", "vCards", "url", "mimetype", "error",
    "ephemeralMessage", "participant", "me", "status", "name",
]  # fmt: skip


def _mutate(rng: random.Random, node: Any) -> Any:
    if isinstance(node, dict) and node:
        key = rng.choice(list(node))
        node[key] = _junk(rng) if rng.random() < 0.5 else _mutate(rng, node[key])
    elif isinstance(node, list) and node:
        node[rng.randrange(len(node))] = _junk(rng)
    else:
        return _junk(rng)
    return node


def test_fuzz_only_webhook_error_escapes() -> None:
    rng = random.Random(20260705)
    builders = [MessageBuilder(engine) for engine in ENGINES]
    outcomes: set[str] = set()
    for i in range(600):
        builder = rng.choice(builders)
        payload = rng.choice(
            [
                builder.text_message(PATIENT, "oi", referral=AD, alt_chat_id="1@lid"),
                builder.voice_message(PATIENT),
                builder.image_message(PATIENT, "x"),
                builder.group_message("1@g.us", "y"),
            ]
        )
        event = rng.choice(["message", "message.any", "session.status", "message.ack", None, 3])
        env: Any = {"event": event, "session": "default", "payload": payload, "me": {"id": ME}}
        for _ in range(rng.randint(1, 6)):
            env = _mutate(rng, env)
        raw = json.dumps(env, allow_nan=False).encode()
        if i % 7 == 0:
            raw = raw[: rng.randrange(len(raw) + 1)]  # truncated bodies too
        try:
            result = parse_webhook(raw)
        except WebhookError as exc:
            assert exc.status in (400, 413)
            outcomes.add("error")
        else:
            assert isinstance(result, Inbound | SessionStatus | Ignored)
            outcomes.add(type(result).__name__)
            if isinstance(result, Inbound):
                assert isinstance(result.text, str) and isinstance(result.timestamp, float)
    assert outcomes >= {"error", "Inbound", "Ignored"}


def test_fuzz_random_bytes() -> None:
    rng = random.Random(7)
    for _ in range(300):
        raw = bytes(rng.randrange(256) for _ in range(rng.randint(0, 200)))
        with contextlib.suppress(WebhookError):
            parse_webhook(raw)


# -- contract with WAHA's OpenAPI document ---------------------------------------------------

SPEC = Path(__file__).parents[2] / "shared" / "waha" / "openapi.json"
# Quirks of the generated spec (WAHA.md section 8): fields typed non-null that engines send as
# null (plus media's url/filename/error, null per WAHA's media docs), mediaUrl "required".
# `me` is null before the session is authenticated (WAHA.md section 1).
NULLABLE = {"to", "participant", "media", "replyTo", "browser", "id", "url", "filename", "error",
            "body", "before"}  # fmt: skip
_TYPES: dict[str, Any] = {
    "string": str,
    "number": (int, float),
    "boolean": bool,
    "object": dict,
    "array": list,
}


def _schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return dict(spec["components"]["schemas"][name])


def _check(spec: dict[str, Any], schema: dict[str, Any], value: dict[str, Any], where: str) -> None:
    properties = schema.get("properties", {})
    required = (
        set(schema.get("required", [])) if isinstance(schema.get("required"), list) else set()
    )
    missing = required - set(value) - {"mediaUrl"}
    assert not missing, f"{where}: missing {sorted(missing)}"
    unknown = set(value) - set(properties)
    assert not unknown, f"{where}: not in the spec {sorted(unknown)}"
    for name, prop in properties.items():
        if name not in value:
            continue
        if value[name] is None and (name in NULLABLE or prop.get("nullable") or name == "me"):
            continue
        if name == "event":
            assert value[name] in prop["enum"], where  # typed "object" by mistake
            continue
        ref = prop.get("$ref") or (prop.get("allOf") or [{}])[0].get("$ref")
        if ref and isinstance(value[name], dict):
            _check(spec, _schema(spec, ref.rsplit("/", 1)[1]), value[name], f"{where}.{name}")
        elif prop.get("type") in _TYPES:
            expected = _TYPES[prop["type"]]
            ok = isinstance(value[name], expected) and not (
                prop["type"] == "number" and isinstance(value[name], bool)
            )
            assert ok, f"{where}.{name}: {value[name]!r} is not {prop['type']}"
        if "enum" in prop:
            assert value[name] in prop["enum"], f"{where}.{name}: {value[name]!r}"


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    if not SPEC.exists():
        pytest.skip("WAHA's openapi.json is not beside the repository")
    return dict(json.loads(SPEC.read_text(encoding="utf-8")))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("event", ["message", "message.any"])
def test_fake_envelopes_follow_the_spec(spec: dict[str, Any], engine: str, event: str) -> None:
    schema = _schema(spec, "WAHAWebhookMessage" if event == "message" else "WAHAWebhookMessageAny")
    builder = MessageBuilder(engine)
    payloads = [
        builder.text_message(PATIENT, "oi", referral=AD),
        builder.text_message(PATIENT, "eco", from_me=True, source="api"),
        builder.voice_message(PATIENT),
        builder.voice_message(PATIENT, downloaded=False),
        builder.image_message(PATIENT, "foto"),
        builder.location_message(PATIENT),
        builder.group_message("1203@g.us", "oi"),
        builder.status_message("story"),
        builder.newsletter_message("post"),
        builder.text_message("176369157804064@lid", "oi", alt_chat_id=PATIENT),
    ]
    for payload in payloads:
        env = envelope(event, payload, engine=engine, me={"id": ME, "pushName": "C"}, metadata={})
        body = json.loads(webhook_request(env).body)
        assert list(body)[:4] == ["id", "timestamp", "event", "session"]
        _check(spec, schema, body, event)


@pytest.mark.parametrize("engine", ENGINES)
def test_fake_events_follow_the_spec(spec: dict[str, Any], engine: str) -> None:
    builder = MessageBuilder(engine)
    target = f"false_{PATIENT}_3EB0TARGET"
    cases = [
        ("message.any", "WAHAWebhookMessageAny", builder.edit_message(PATIENT, target, "novo")),
        ("message.any", "WAHAWebhookMessageAny",
         builder.edit_message(PATIENT, target, "x", encrypted=True)),
        ("message", "WAHAWebhookMessage", builder.revoke_message(PATIENT, target)),
        ("message", "WAHAWebhookMessage", builder.call_message(PATIENT)),
        ("message", "WAHAWebhookMessage", builder.reaction_message(PATIENT, target)),
        ("message", "WAHAWebhookMessage", builder.poll_vote_message(PATIENT, target)),
        ("message", "WAHAWebhookMessage", builder.disappearing_setting(PATIENT)),
        ("message.edited", "WAHAWebhookMessageEdited",
         builder.edited_event(PATIENT, target, "novo")),
        ("message.revoked", "WAHAWebhookMessageRevoked", builder.revoked_event(PATIENT, target)),
        ("message.reaction", "WAHAWebhookMessageReaction",
         builder.reaction_event(PATIENT, target, "🙏")),
        ("call.received", "WAHAWebhookCallReceived", builder.call_event(PATIENT)),
    ]  # fmt: skip
    for event, name, payload in cases:
        env = envelope(event, payload, engine=engine, me={"id": ME, "pushName": "C"}, metadata={})
        _check(spec, _schema(spec, name), json.loads(webhook_request(env).body), event)


def test_fake_session_status_follows_the_spec(spec: dict[str, Any]) -> None:
    from clinicflow.testing.waha_messages import session_status_payload

    env = envelope("session.status", session_status_payload("default", "SCAN_QR_CODE"), me=None)
    _check(spec, _schema(spec, "WAHAWebhookSessionStatus"), env, "session.status")


def test_referral_on_a_media_message_and_ad_ids_as_numbers() -> None:
    payload = MessageBuilder("NOWEB").image_message(PATIENT, "foto", referral=AD)
    ad = payload["_data"]["message"]["imageMessage"]["contextInfo"]["externalAdReply"]
    assert _built(payload).referral == {**AD, "clid": ad["ctwaClid"]}
    ctwa = {"sourceId": 12023, "sourceType": "ad", "isSuspiciousLink": None}
    raw_payload = {
        "id": "false_5511912345678@c.us_A",
        "from": "5511912345678@c.us",
        "_data": {"ctwaContext": ctwa},
    }
    assert _inbound(_raw("message", raw_payload)).referral == {"source": "ad", "id": "12023"}


def test_ack_built_by_the_fake_is_ignored() -> None:
    from clinicflow.testing.waha_messages import ack_payload

    result = parse_webhook(webhook_request(envelope("message.ack", ack_payload("x", PATIENT))).body)
    assert isinstance(result, Ignored)


@pytest.mark.parametrize(
    ("value", "envelope_ms", "expected"),
    [
        pytest.param(10**400, 1_700_000_000_000, 1_700_000_000.0, id="overflow-uses-envelope"),
        pytest.param(1_700_000_000_123, None, 1_700_000_000.123, id="milliseconds"),
        pytest.param("nan", None, 0.0, id="nan-string"),
        pytest.param(-5, None, 0.0, id="negative"),
        pytest.param(True, None, 0.0, id="bool"),
    ],
)
def test_timestamps(value: Any, envelope_ms: Any, expected: float) -> None:
    payload = {"id": "false_5511912345678@c.us_A", "from": "5511912345678@c.us", "timestamp": value}
    inbound = _inbound(_raw("message", payload, timestamp=envelope_ms))
    assert inbound.timestamp == pytest.approx(expected)


def test_non_bytes_body_is_400() -> None:
    with pytest.raises(WebhookError) as info:
        parse_webhook('{"event": "message"}')  # type: ignore[arg-type]
    assert info.value.status == 400


# -- one person, several ids; events that are not messages; clean data -----------------------

LID = "208898765432109@lid"
TARGET = f"false_{PATIENT}_3EB0TARGET"


@pytest.mark.parametrize("engine", ENGINES)
def test_whatsapp_key_is_the_same_under_both_ids(engine: str) -> None:
    builder = MessageBuilder(engine)
    lid = _built(builder.text_message(LID, "oi", msg_id="3EB0AA01"), engine=engine)
    phone = _built(builder.text_message(PATIENT, "oi", msg_id="3EB0AA01"), engine=engine)
    assert lid.wa_key == phone.wa_key == "3EB0AA01"
    group = _built(builder.group_message("120363041234567890@g.us", "oi", msg_id="3EB0GG"))
    assert group.wa_key == "3EB0GG"  # not the participant after the last "_"


@pytest.mark.parametrize(
    ("data", "alt"),
    [
        ({"key": {"remoteJid": LID, "remoteJidAlt": "5511987650003@s.whatsapp.net"}},
         "5511987650003@c.us"),
        ({"key": {"remoteJid": LID, "participantAlt": "5511987650003:3@s.whatsapp.net"}},
         "5511987650003@c.us"),
        ({"Info": {"Chat": LID, "SenderAlt": "5511987650003@s.whatsapp.net"}},
         "5511987650003@c.us"),
        ({"key": {"remoteJid": LID, "remoteJidAlt": "../../x@s.whatsapp.net"}}, None),
    ],
)  # fmt: skip
def test_alternate_ids(data: dict[str, Any], alt: str | None) -> None:
    payload = {"id": f"false_{LID}_A", "from": LID, "body": "oi", "_data": data}
    assert _inbound(_raw("message", payload)).alt_chat_id == alt


@pytest.mark.parametrize("engine", ["NOWEB", "GOWS"])
@pytest.mark.parametrize(
    ("build", "kind", "target", "text"),
    [
        (lambda b: b.edit_message(PATIENT, TARGET, "novo texto"), "edit", "3EB0TARGET",
         "novo texto"),
        (lambda b: b.edit_message(PATIENT, TARGET, "x", encrypted=True), "edit", "3EB0TARGET", ""),
        (lambda b: b.revoke_message(PATIENT, TARGET), "revoke", "3EB0TARGET", ""),
        (lambda b: b.call_message(PATIENT), "call", None, ""),
        (lambda b: b.reaction_message(PATIENT, TARGET, "❤️"), "reaction", "3EB0TARGET", "❤️"),
        (lambda b: b.poll_vote_message(PATIENT, TARGET), "poll_vote", "3EB0TARGET", ""),
        (lambda b: b.disappearing_setting(PATIENT), "protocol", None, ""),
    ],
    ids=["edit", "encrypted-edit", "revoke", "call", "reaction", "poll-vote", "disappearing"],
)  # fmt: skip
def test_events_that_travel_as_messages(
    engine: str, build: Any, kind: str, target: str | None, text: str
) -> None:
    for event in ("message", "message.any"):
        inbound = _built(build(MessageBuilder(engine)), event, engine)
        assert (inbound.kind, inbound.target_key, inbound.text) == (kind, target, text)
        assert inbound.is_system and not inbound.media_error


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        ({"type": "revoked"}, "revoke"),
        ({"type": "call_log"}, "call"),
        ({"type": "e2e_notification"}, "protocol"),
        ({"type": "gp2"}, "protocol"),
        ({"message": {"senderKeyDistributionMessage": {}}}, "protocol"),
        ({"message": {"protocolMessage": {"type": 0, "key": {"ID": "AB"}}}}, "revoke"),
        ({"Message": {"protocolMessage": {"type": 14, "key": {"ID": "AB"},
                                          "editedMessage": {"conversation": "n"}}}}, "edit"),
        ({"message": {"editedMessage": {"message": {"protocolMessage": {
            "type": "MESSAGE_EDIT", "key": {"id": "AB"},
            "editedMessage": {"extendedTextMessage": {"text": "n"}}}}}}}, "edit"),
        ({"message": {"bcallMessage": {}}}, "call"),
        ({"message": {"encReactionMessage": {"targetMessageKey": {"id": "AB"}}}}, "reaction"),
        ({}, "protocol"),
    ],
)  # fmt: skip
def test_system_kinds_by_engine_shape(data: dict[str, Any], kind: str) -> None:
    payload = {"id": f"false_{PATIENT}_A", "from": PATIENT, "body": None, "_data": data}
    assert _inbound(_raw("message", payload)).kind == kind


def test_a_message_with_a_caption_is_not_an_event() -> None:
    data = {"message": {"senderKeyDistributionMessage": {}, "conversation": "oi"}}
    payload = {"id": f"false_{PATIENT}_A", "from": PATIENT, "body": "oi", "_data": data}
    assert _inbound(_raw("message", payload)).kind == "text"


@pytest.mark.parametrize("engine", ENGINES)
def test_events_about_messages(engine: str) -> None:
    b = MessageBuilder(engine)
    edited = _built(b.edited_event(PATIENT, TARGET, "corrigido"), "message.edited", engine)
    assert (edited.kind, edited.target_key, edited.text) == ("edit", "3EB0TARGET", "corrigido")
    revoked = _built(b.revoked_event(PATIENT, TARGET), "message.revoked", engine)
    assert (revoked.kind, revoked.target_key, revoked.chat_id) == ("revoke", "3EB0TARGET", PATIENT)
    reaction = _built(b.reaction_event(PATIENT, TARGET, "🙏"), "message.reaction", engine)
    assert (reaction.kind, reaction.target_key, reaction.text) == ("reaction", "3EB0TARGET", "🙏")
    call = _built(b.call_event(PATIENT), "call.received", engine)
    assert call.kind == "call" and call.message_id.startswith("call_") and not call.from_me


def test_an_edit_event_named_after_the_edited_message_gets_its_own_id() -> None:
    builder = MessageBuilder("WEBJS")
    payload = builder.edited_event(PATIENT, TARGET, "corrigido", msg_id=TARGET)
    edited = _built(payload, "message.edited", "WEBJS")
    assert edited.target_key == "3EB0TARGET"
    assert edited.wa_key != "3EB0TARGET" and edited.message_id != TARGET
    again = _built(builder.edited_event(PATIENT, TARGET, "de novo", msg_id=TARGET),
                   "message.edited", "WEBJS")  # fmt: skip
    assert again.wa_key != edited.wa_key  # another edit, another row


@pytest.mark.parametrize(
    ("event", "payload"),
    [
        ("message.revoked", {"after": None, "before": None, "revokedMessageId": "A"}),
        ("call.received", {"from": PATIENT, "isGroup": False}),
        ("call.received", {"id": "C", "from": "120363041234567890@g.us", "isGroup": True}),
        ("message.reaction", {"id": "x", "reaction": {"text": "👍", "messageId": "y"}}),
        ("message.edited", {"id": "x", "from": "../x@c.us", "body": "y"}),
    ],
)
def test_incomplete_events_are_ignored(event: str, payload: dict[str, Any]) -> None:
    assert isinstance(parse_webhook(_raw(event, payload)), Ignored)


def test_lone_surrogates_become_replacement_characters() -> None:
    raw = _raw("message", {"id": f"false_{PATIENT}_A", "from": PATIENT, "body": "oi \ud83d"})
    assert b"\\ud83d" in raw  # JSON allows a lone surrogate; UTF-8 cannot hold it
    inbound = _inbound(raw)
    assert inbound.text == "oi \ufffd"
    inbound.text.encode("utf-8")  # storable
    pair = _inbound(raw.replace(b"\\ud83d", b"\\ud83d\\ude00"))
    assert pair.text == "oi 😀"  # a valid pair is kept


@pytest.mark.parametrize(
    "chat", ["../../etc/passwd@c.us", "' OR 1=1 --@c.us", "55119\n88887777@c.us", "1@c.us"]
)
def test_malformed_chat_ids_are_ignored_with_the_id(chat: str) -> None:
    result = parse_webhook(_raw("message", {"id": "false_x_A", "from": chat, "body": "oi"}))
    assert isinstance(result, Ignored) and result.bad_id == chat
