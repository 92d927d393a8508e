"""WAHA ``WAMessage`` payloads as the real engines put them in webhooks, for tests.

Builders for the NOWEB (Baileys), GOWS (whatsmeow) and WEBJS (whatsapp-web.js) flavours:
``from``/``to`` conventions, the raw ``_data`` each engine passes through, media objects and
click-to-WhatsApp ad context. Ids follow WAHA's formats: ``false_<chat>_<waid>`` and, in
groups and status, ``false_<chat>_<waid>_<participant>``. :class:`MessageBuilder` bundles
them with per-fake defaults (engine, own number, where media files are served).

Besides messages, the builders make the events that travel as messages or next to them, in
each engine's shape: an ``@lid`` sender with her phone as the alternate id, edits (Baileys
``protocolMessage`` MESSAGE_EDIT, or ``secretEncryptedMessage`` with a null body, and the
``message.edited`` event), revokes (``protocolMessage`` REVOKE, WEBJS ``revoked``, the
``message.revoked`` event), calls (``_data.message.call``, ``call.received``), reactions
(``message.reaction``), poll votes and disappearing-message settings.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Literal

Engine = Literal["NOWEB", "GOWS", "WEBJS"]

DEFAULT_ME = "5511900000000@c.us"
VOICE_MIMETYPE = "audio/ogg; codecs=opus"


def new_wa_id() -> str:
    """A WhatsApp message id like the ones phones and Baileys generate (``3EB0`` + hex)."""
    return "3EB0" + secrets.token_hex(8).upper()


def serialize_id(from_me: bool, chat_id: str, wa_id: str, participant: str | None = None) -> str:
    """WAHA's message id: ``<fromMe>_<chat>_<waid>[_<participant>]``."""
    tail = f"_{participant}" if participant else ""
    return f"{'true' if from_me else 'false'}_{chat_id}_{wa_id}{tail}"


def to_jid(chat_id: str) -> str:
    """The engine-internal form of a chat id (``@c.us`` becomes ``@s.whatsapp.net``)."""
    return chat_id.replace("@c.us", "@s.whatsapp.net")


def wa_message(
    chat_id: str,
    body: str | None,
    *,
    engine: str = "NOWEB",
    from_me: bool = False,
    source: str | None = None,
    timestamp: float | None = None,
    msg_id: str | None = None,
    push_name: str | None = "Ana",
    participant: str | None = None,
    me_id: str = DEFAULT_ME,
    content: dict[str, Any] | None = None,
    webjs_type: str = "chat",
    media: dict[str, Any] | None = None,
    referral: dict[str, str] | None = None,
    alt_chat_id: str | None = None,
    location: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One ``WAMessage`` payload as ``engine`` would put it in a webhook.

    Args:
        chat_id: the chat (``@c.us``, ``@lid``, ``@g.us``, ``status@broadcast``...).
        body: the text or caption.
        engine: ``NOWEB``, ``GOWS`` or ``WEBJS`` (``WPP`` behaves like WEBJS).
        from_me: our own message (``message.any``); ``source`` defaults to ``app``.
        timestamp: unix seconds, default now.
        msg_id: the WhatsApp id part, or a whole ``false_<chat>_<id>`` id; default random.
        push_name: the sender's display name.
        participant: the sender in groups and status.
        me_id: our own number (WEBJS puts it in ``from``/``to``).
        content: the Baileys/whatsmeow message content; default ``{"conversation": body}``.
        webjs_type: WEBJS ``_data.type`` (``chat``, ``ptt``, ``image``...).
        media: the ``media`` object for media messages.
        referral: click-to-WhatsApp ad details: ``source``, ``title``, ``url``, ``id``, ``body``.
        alt_chat_id: the sender's other id (phone number for an ``@lid`` chat).
        location: the ``location`` object for location messages.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    full_id: str
    to: str | None
    if msg_id and msg_id.startswith(("true_", "false_")):
        wa_id, full_id = msg_id.split("_")[2], msg_id
    else:
        wa_id = msg_id or new_wa_id()
        full_id = serialize_id(from_me, chat_id, wa_id, participant)
    is_group = chat_id.endswith("@g.us")
    content = dict(content) if content is not None else {"conversation": body or ""}
    if referral:
        content = _with_ad(content, body, referral)
    if engine in ("WEBJS", "WPP"):
        sender = me_id if from_me else chat_id
        to = chat_id if from_me else me_id
        data = _webjs_data(full_id, from_me, chat_id, wa_id, webjs_type, body, ts, push_name)
        data.update({"from": sender, "to": to})
        if participant:
            data["author"] = participant
        if referral:
            data["ctwaContext"] = _ctwa_context(referral)
    else:
        sender, to = chat_id, (chat_id if is_group else None)
        if engine == "GOWS":
            data = _gows_data(chat_id, wa_id, from_me, participant, alt_chat_id, push_name, ts)
            data["Message"] = content
        else:
            data = _noweb_data(chat_id, wa_id, from_me, participant, alt_chat_id, push_name, ts)
            data["message"] = content
    payload: dict[str, Any] = {
        "id": full_id,
        "timestamp": ts,
        "from": sender,
        "fromMe": from_me,
        "source": source or "app",
        "to": to,
        "participant": participant,
        "body": body,
        "hasMedia": media is not None,
        "media": media,
        "ack": 1,
        "ackName": "SERVER",
        "replyTo": None,
        "_data": data,
    }
    if media is not None and media.get("url"):
        payload["mediaUrl"] = media["url"]
    if location is not None:
        payload["location"] = location
    return payload


def wa_key_of(msg_id: str) -> str:
    """The WhatsApp key of a WAHA id (``false_<chat>_<KEY>[_<participant>]``) or a bare key."""
    parts = msg_id.split("_")
    return parts[2] if len(parts) >= 3 and parts[0] in ("true", "false") else parts[-1]


def engine_of(payload: dict[str, Any]) -> str | None:
    """Which engine a built payload imitates, told by the shape of its ``_data``."""
    data = payload.get("_data")
    if not isinstance(data, dict):
        return None
    if "Info" in data:
        return "GOWS"
    if isinstance(data.get("key"), dict):
        return "NOWEB"
    return "WEBJS" if isinstance(data.get("id"), dict) else None


def media_object(url: str | None, mimetype: str, *, filename: str | None = None) -> dict[str, Any]:
    """A ``media`` object; ``url=None`` gives the shape of a failed download."""
    error = None if url else {"message": "Media download failed", "name": "Error"}
    return {"url": url, "mimetype": mimetype, "filename": filename, "error": error}


def voice_content(seconds: int = 3) -> dict[str, Any]:
    """Baileys/whatsmeow content of a voice note (``audioMessage`` with ``ptt``)."""
    return {"audioMessage": {"mimetype": VOICE_MIMETYPE, "seconds": seconds, "ptt": True}}


def image_content(caption: str, mimetype: str = "image/jpeg") -> dict[str, Any]:
    """Baileys/whatsmeow content of a photo with an optional caption."""
    image: dict[str, Any] = {"mimetype": mimetype}
    if caption:
        image["caption"] = caption
    return {"imageMessage": image}


def location_content(latitude: float, longitude: float) -> dict[str, Any]:
    """Baileys/whatsmeow content of a pinned location."""
    return {"locationMessage": {"degreesLatitude": latitude, "degreesLongitude": longitude}}


def session_status_payload(session: str, status: str) -> dict[str, Any]:
    """A ``session.status`` payload."""
    point = {"status": status, "timestamp": int(time.time() * 1000)}
    return {"name": session, "status": status, "statuses": [point], "data": None}


def ack_payload(
    message_id: str, chat_id: str, ack: int = 3, me_id: str = DEFAULT_ME
) -> dict[str, Any]:
    """A ``message.ack`` payload for one of our messages (3 = READ)."""
    names = {-1: "ERROR", 0: "PENDING", 1: "SERVER", 2: "DEVICE", 3: "READ", 4: "PLAYED"}
    return {
        "id": message_id,
        "from": chat_id,
        "to": me_id,
        "participant": None,
        "fromMe": True,
        "ack": ack,
        "ackName": names.get(ack, "UNKNOWN"),
    }


class MessageBuilder:
    """Payload builders with defaults; :meth:`add_file` decides where media is served.

    Every builder accepts the keyword options of :func:`wa_message` (``from_me``, ``source``,
    ``engine``, ``timestamp``, ``msg_id``, ``push_name``, ``referral``, ``alt_chat_id``...).

    Args:
        engine: the default engine flavour.
        me_id: our own number.
    """

    def __init__(self, engine: str = "NOWEB", me_id: str = DEFAULT_ME) -> None:
        self.engine = engine
        self.me_id = me_id

    def add_file(self, name: str, data: bytes, mimetype: str) -> str | None:
        """Where a media file would be downloaded from (a fake server stores ``data``)."""
        return f"http://localhost:3000/api/files/default/{name}"

    def text_message(self, chat_id: str, body: str | None, **options: Any) -> dict[str, Any]:
        """A text message (or any message, given ``content``/``media`` options)."""
        options.setdefault("engine", self.engine)
        options.setdefault("me_id", self.me_id)
        return wa_message(chat_id, body, **options)

    def voice_message(
        self,
        chat_id: str,
        audio: bytes = b"OggS\x00fake-opus",
        *,
        seconds: int = 3,
        downloaded: bool = True,
        **options: Any,
    ) -> dict[str, Any]:
        """A voice note (``.oga``, OGG/Opus, empty body).

        With ``downloaded=False`` WAHA failed to fetch it: ``media.url`` is null, with an error.
        """
        options["msg_id"] = self._full_id(chat_id, options)
        url = (
            self.add_file(options["msg_id"] + ".oga", audio, VOICE_MIMETYPE) if downloaded else None
        )
        media = media_object(url, VOICE_MIMETYPE)
        content = voice_content(seconds)
        return self.text_message(
            chat_id, "", content=content, webjs_type="ptt", media=media, **options
        )

    def image_message(
        self, chat_id: str, caption: str = "", image: bytes = b"\xff\xd8fake-jpeg", **options: Any
    ) -> dict[str, Any]:
        """A photo (``.jpeg``) with an optional caption."""
        options["msg_id"] = self._full_id(chat_id, options)
        media = media_object(
            self.add_file(options["msg_id"] + ".jpeg", image, "image/jpeg"), "image/jpeg"
        )
        content = image_content(caption)
        return self.text_message(
            chat_id, caption, content=content, webjs_type="image", media=media, **options
        )

    def location_message(
        self, chat_id: str, latitude: float = -23.5614, longitude: float = -46.6559, **options: Any
    ) -> dict[str, Any]:
        """A pinned location (``location`` object, no body)."""
        location = {"latitude": str(latitude), "longitude": str(longitude), "live": False}
        content = location_content(latitude, longitude)
        return self.text_message(
            chat_id, "", content=content, webjs_type="location", location=location, **options
        )

    def group_message(
        self, group_id: str, body: str, participant: str = "5511977776666@c.us", **options: Any
    ) -> dict[str, Any]:
        """A text in a group (``@g.us``) from ``participant``."""
        return self.text_message(group_id, body, participant=participant, **options)

    def status_message(
        self, body: str, participant: str = "5511977776666@c.us", **options: Any
    ) -> dict[str, Any]:
        """A status story (``status@broadcast``) posted by ``participant``."""
        return self.text_message("status@broadcast", body, participant=participant, **options)

    def newsletter_message(
        self, body: str, newsletter_id: str = "120363000000000000@newsletter", **options: Any
    ) -> dict[str, Any]:
        """A post in a WhatsApp channel (``@newsletter``)."""
        options.setdefault("push_name", None)
        return self.text_message(newsletter_id, body, **options)

    # -- one person, two ids ----------------------------------------------------------------

    def lid_message(
        self, lid: str, body: str, phone: str | None = None, **options: Any
    ) -> dict[str, Any]:
        """A text from an ``@lid`` chat; NOWEB/GOWS name her phone as the alternate id
        (``key.remoteJidAlt`` / ``Info.SenderAlt``); WEBJS shows only the lid."""
        return self.text_message(lid, body, alt_chat_id=phone, **options)

    # -- events that are not messages --------------------------------------------------------

    def edit_message(
        self, chat_id: str, target: str, new_text: str, *, encrypted: bool = False, **options: Any
    ) -> dict[str, Any]:
        """An edit as a ``message``/``message.any`` payload: ``body`` null and a Baileys
        ``protocolMessage`` (MESSAGE_EDIT, the new text inside) or, ``encrypted``, a
        ``secretEncryptedMessage`` whose new text nobody can read (WAHA #2089)."""
        key = self._target_key(chat_id, target)
        if encrypted:
            content: dict[str, Any] = {
                "secretEncryptedMessage": {
                    "targetMessageKey": key,
                    "encPayload": "q2VuY3J5cHRlZA==",
                    "encIv": "aXY=",
                    "secretEncType": "MESSAGE_EDIT",
                },
                "messageContextInfo": {"messageSecret": "c2VjcmV0"},
            }
        else:
            content = {
                "protocolMessage": {
                    "key": key,
                    "type": "MESSAGE_EDIT",
                    "editedMessage": {"conversation": new_text},
                    "timestampMs": str(int(time.time() * 1000)),
                }
            }
        return self.text_message(chat_id, None, content=content, webjs_type="protocol", **options)

    def edited_event(
        self, chat_id: str, target: str, new_text: str, **options: Any
    ) -> dict[str, Any]:
        """A ``message.edited`` payload: the message fields, the new body, ``editedMessageId``."""
        payload = self.text_message(chat_id, new_text, **options)
        payload["editedMessageId"] = wa_key_of(target)
        return payload

    def revoke_message(self, chat_id: str, target: str, **options: Any) -> dict[str, Any]:
        """A "deleted for everyone" as a ``message`` payload (``protocolMessage`` REVOKE; WEBJS
        ``_data.type`` "revoked")."""
        content = {"protocolMessage": {"key": self._target_key(chat_id, target), "type": "REVOKE"}}
        return self.text_message(chat_id, None, content=content, webjs_type="revoked", **options)

    def revoked_event(self, chat_id: str, target: str, **options: Any) -> dict[str, Any]:
        """A ``message.revoked`` payload: ``after`` (the revoke message), ``revokedMessageId``."""
        after = self.revoke_message(chat_id, target, **options)
        return {"after": after, "before": None, "revokedMessageId": wa_key_of(target)}

    def call_message(self, chat_id: str, *, video: bool = False, **options: Any) -> dict[str, Any]:
        """A missed call as an empty ``message`` with ``_data.message.call`` (WAHA #840)."""
        content = {"call": {"callKey": "Y2FsbA==", "isVideo": video}}
        return self.text_message(chat_id, None, content=content, webjs_type="call_log", **options)

    def call_event(self, chat_id: str, *, video: bool = False, **options: Any) -> dict[str, Any]:
        """A ``call.received`` payload: ``{id, from, timestamp, isVideo, isGroup, _data}``."""
        ts = options.get("timestamp")
        call_id = secrets.token_hex(16).upper()
        return {
            "id": call_id,
            "from": chat_id,
            "timestamp": int(time.time()) if ts is None else ts,
            "isVideo": video,
            "isGroup": False,
            "_data": {"id": call_id, "from": to_jid(chat_id), "status": "offer"},
        }

    def reaction_event(
        self, chat_id: str, target: str, emoji: str = "👍", **options: Any
    ) -> dict[str, Any]:
        """A ``message.reaction`` payload (``reaction.text`` "" means the reaction was removed)."""
        ts = options.get("timestamp")
        wa_id = new_wa_id()
        target_id = target if "_" in target else serialize_id(True, chat_id, target)
        return {
            "id": serialize_id(False, chat_id, wa_id),
            "timestamp": int(time.time()) if ts is None else ts,
            "from": chat_id,
            "fromMe": False,
            "source": "app",
            "to": self.me_id,
            "participant": None,
            "reaction": {"text": emoji, "messageId": target_id},
        }

    def reaction_message(
        self, chat_id: str, target: str, emoji: str = "👍", **options: Any
    ) -> dict[str, Any]:
        """A reaction as a ``message`` payload (Baileys ``reactionMessage``)."""
        content = {"reactionMessage": {"key": self._target_key(chat_id, target), "text": emoji}}
        return self.text_message(chat_id, None, content=content, webjs_type="reaction", **options)

    def poll_vote_message(self, chat_id: str, poll: str, **options: Any) -> dict[str, Any]:
        """A vote in a poll as a ``message`` payload (Baileys ``pollUpdateMessage``)."""
        content = {
            "pollUpdateMessage": {
                "pollCreationMessageKey": self._target_key(chat_id, poll, from_me=True),
                "vote": {"encPayload": "dm90ZQ==", "encIv": "aXY="},
            }
        }
        return self.text_message(
            chat_id, None, content=content, webjs_type="poll_update", **options
        )

    def disappearing_setting(
        self, chat_id: str, seconds: int = 86400, **options: Any
    ) -> dict[str, Any]:
        """She turned disappearing messages on (``protocolMessage`` EPHEMERAL_SETTING)."""
        content = {"protocolMessage": {"type": "EPHEMERAL_SETTING", "ephemeralExpiration": seconds}}
        return self.text_message(chat_id, None, content=content, webjs_type="protocol", **options)

    def _target_key(self, chat_id: str, target: str, *, from_me: bool = False) -> dict[str, Any]:
        return {"remoteJid": to_jid(chat_id), "fromMe": from_me, "id": wa_key_of(target)}

    def _full_id(self, chat_id: str, options: dict[str, Any]) -> str:
        msg_id = str(options.get("msg_id") or new_wa_id())
        if msg_id.startswith(("true_", "false_")):
            return msg_id
        from_me = bool(options.get("from_me", False))
        return serialize_id(from_me, chat_id, msg_id, options.get("participant"))


def _with_ad(content: dict[str, Any], body: str | None, referral: dict[str, str]) -> dict[str, Any]:
    ad = {
        "title": referral.get("title"),
        "body": referral.get("body"),
        "sourceType": referral.get("source", "ad"),
        "sourceId": referral.get("id"),
        "sourceUrl": referral.get("url"),
        "ctwaClid": "Afc" + secrets.token_hex(6),
    }
    context = {
        "externalAdReply": {k: v for k, v in ad.items() if v is not None},
        "entryPointConversionSource": "ctwa_ad",
        "entryPointConversionApp": "whatsapp",
    }
    if "conversation" in content or not content:
        return {"extendedTextMessage": {"text": body or "", "contextInfo": context}}
    first = next(iter(content))
    return {**content, first: {**content[first], "contextInfo": context}}


def _ctwa_context(referral: dict[str, str]) -> dict[str, Any]:
    ctwa = {
        "sourceType": referral.get("source", "ad"),
        "sourceId": referral.get("id"),
        "sourceUrl": referral.get("url"),
        "title": referral.get("title"),
        "description": referral.get("body"),
        "conversionSource": "FB_Ads",
        "isSuspiciousLink": None,
    }
    return {k: v for k, v in ctwa.items() if v is not None or k == "isSuspiciousLink"}


def _webjs_data(
    full_id: str,
    from_me: bool,
    chat_id: str,
    wa_id: str,
    webjs_type: str,
    body: str | None,
    ts: float,
    push_name: str | None,
) -> dict[str, Any]:
    ident = {"fromMe": from_me, "remote": chat_id, "id": wa_id, "_serialized": full_id}
    return {"id": ident, "type": webjs_type, "body": body or "", "t": ts, "notifyName": push_name}


def _noweb_data(
    chat_id: str,
    wa_id: str,
    from_me: bool,
    participant: str | None,
    alt: str | None,
    push_name: str | None,
    ts: float,
) -> dict[str, Any]:
    key: dict[str, Any] = {"remoteJid": to_jid(chat_id), "fromMe": from_me, "id": wa_id}
    if participant:
        key["participant"] = to_jid(participant)
    if alt:
        key["remoteJidAlt"] = to_jid(alt)
    broadcast = chat_id.endswith("@broadcast")
    return {"key": key, "messageTimestamp": ts, "pushName": push_name, "broadcast": broadcast}


def _gows_data(
    chat_id: str,
    wa_id: str,
    from_me: bool,
    participant: str | None,
    alt: str | None,
    push_name: str | None,
    ts: float,
) -> dict[str, Any]:
    info: dict[str, Any] = {
        "Chat": to_jid(chat_id),
        "Sender": to_jid(participant or chat_id),
        "IsFromMe": from_me,
        "IsGroup": chat_id.endswith("@g.us"),
        "ID": wa_id,
        "PushName": push_name,
        "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts)),
    }
    if alt:
        info["SenderAlt"] = to_jid(alt)
    return {"Info": info}
