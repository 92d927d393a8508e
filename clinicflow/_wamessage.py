"""Reading the engine-specific parts of a WAHA ``WAMessage`` (private to clinicflow).

WAHA passes each engine's raw message through as ``_data``: WEBJS (whatsapp-web.js objects),
NOWEB (Baileys ``{key, message}``) and GOWS (whatsmeow ``{Info, Message}``). The helpers here
dig the kind of message, the sender's name, the alternate chat id and click-to-WhatsApp ad
details out of those shapes, tolerating any type anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

MessageKind = Literal[
    "text",
    "voice",
    "audio",
    "image",
    "video",
    "document",
    "location",
    "sticker",
    "contact",
    "other",
    # Not messages: protocol and system events that travel as messages (see system_event).
    "edit",
    "revoke",
    "call",
    "reaction",
    "poll_vote",
    "protocol",
]
#: Kinds that are events about a chat, not something a person said: never answered.
SYSTEM_KINDS: frozenset[str] = frozenset(
    {"edit", "revoke", "call", "reaction", "poll_vote", "protocol"}
)

# WEBJS `_data.type` and Baileys/whatsmeow message keys, mapped to our kinds.
_WEBJS_TYPES: dict[str, MessageKind] = {
    "chat": "text",
    "ptt": "voice",
    "audio": "audio",
    "image": "image",
    "video": "video",
    "gif": "video",
    "document": "document",
    "location": "location",
    "sticker": "sticker",
    "vcard": "contact",
    "multi_vcard": "contact",
}
_PROTO_KEYS: dict[str, MessageKind] = {
    "conversation": "text",
    "extendedTextMessage": "text",
    "imageMessage": "image",
    "videoMessage": "video",
    "ptvMessage": "video",
    "documentMessage": "document",
    "documentWithCaptionMessage": "document",
    "locationMessage": "location",
    "liveLocationMessage": "location",
    "stickerMessage": "sticker",
    "contactMessage": "contact",
    "contactsArrayMessage": "contact",
}
# Baileys wraps some messages one level deeper; look through these.
_PROTO_WRAPPERS = (
    "ephemeralMessage",
    "viewOnceMessage",
    "viewOnceMessageV2",
    "viewOnceMessageV2Extension",
    "documentWithCaptionMessage",
    "editedMessage",
)
# Content keys that carry no message of their own (alone, the message is a system event).
_BOOKKEEPING_KEYS = frozenset(
    {
        "messageContextInfo",
        "senderKeyDistributionMessage",
        "fastRatchetKeySenderKeyDistributionMessage",
        "keepInChatMessage",
        "pinInChatMessage",
        "encEventResponseMessage",
        "eventResponseMessage",
        "requestPhoneNumberMessage",
        "deviceSentMessage",
        "peerDataOperationRequestMessage",
        "peerDataOperationRequestResponseMessage",
        "appStateSyncKeyShare",
        "initialSecurityNotificationSettingSync",
        "botInvokeMessage",
        "placeholderMessage",
    }
)
_CALL_KEYS = ("call", "bcallMessage", "callLogMesssage", "callLogMessage")
# WEBJS `_data.type` of system events.
_WEBJS_SYSTEM: dict[str, MessageKind] = {
    "revoked": "revoke",
    "call_log": "call",
    "reaction": "reaction",
    "poll_update": "poll_vote",
    "protocol": "protocol",
    "e2e_notification": "protocol",
    "notification": "protocol",
    "notification_template": "protocol",
    "gp2": "protocol",
    "ciphertext": "protocol",
    "broadcast_notification": "protocol",
    "pinned_message": "protocol",
    "keep_in_chat": "protocol",
}


def normalize_chat_id(jid: str) -> str:
    """Turn an engine-internal jid into WAHA's public form.

    ``5511999@s.whatsapp.net`` and device jids like ``5511999:12@s.whatsapp.net`` become
    ``5511999@c.us``; a device suffix on ``@lid``/``@c.us`` is dropped; others are unchanged.
    """
    user, sep, server = jid.partition("@")
    if not sep:
        return jid
    if server == "s.whatsapp.net":
        server = "c.us"
    if server in ("c.us", "lid"):
        user = user.split(":", 1)[0]
    return f"{user}@{server}"


def proto_message(data: dict[str, Any]) -> dict[str, Any]:
    """The Baileys (NOWEB ``message``) or whatsmeow (GOWS ``Message``) content, unwrapped."""
    message = as_dict(data.get("message")) or as_dict(data.get("Message"))
    for _ in range(3):
        inner = next(
            (
                as_dict(as_dict(message.get(w)).get("message"))
                for w in _PROTO_WRAPPERS
                if w in message
            ),
            {},
        )
        if not inner:
            break
        message = inner
    return message


@dataclass(frozen=True)
class SystemEvent:
    """A protocol or system event that WAHA delivered as a message.

    ``target_key`` is the WhatsApp key of the message it is about (edited, deleted, reacted
    to); ``text`` is the new text of an edit when the engine shows it (an encrypted edit does
    not) or the emoji of a reaction.
    """

    kind: MessageKind
    target_key: str | None = None
    text: str | None = None


def system_event(payload: dict[str, Any], data: dict[str, Any]) -> SystemEvent | None:
    """What a ``message``/``message.any`` payload is when it is not a message, else None.

    Edits (``protocolMessage`` MESSAGE_EDIT, ``secretEncryptedMessage`` MESSAGE_EDIT), revokes
    (``protocolMessage`` REVOKE, WEBJS ``revoked``), calls (``call``), reactions, poll
    updates, disappearing-message settings and other protocol messages, and a message with
    no content at all.
    """
    webjs = _WEBJS_SYSTEM.get(as_str(data.get("type")) or "")
    if webjs is not None:
        return SystemEvent(webjs)
    proto = proto_message(data)
    protocol = as_dict(proto.get("protocolMessage"))
    if protocol:
        target = _key_id(protocol.get("key"))
        kind = protocol.get("type")
        if kind in (0, "REVOKE"):
            return SystemEvent("revoke", target)
        if kind in (14, "MESSAGE_EDIT"):
            new = text_of(as_dict(protocol.get("editedMessage")))
            return SystemEvent("edit", target, new)
        return SystemEvent("protocol", target)
    secret = as_dict(proto.get("secretEncryptedMessage"))
    if secret:
        target = _key_id(secret.get("targetMessageKey"))
        edit = secret.get("secretEncType") in ("MESSAGE_EDIT", 2)
        return SystemEvent("edit" if edit else "protocol", target)
    if any(key in proto for key in _CALL_KEYS):
        return SystemEvent("call")
    reaction = as_dict(proto.get("reactionMessage"))
    if reaction:
        return SystemEvent("reaction", _key_id(reaction.get("key")), as_str(reaction.get("text")))
    if "encReactionMessage" in proto:
        target = _key_id(as_dict(proto["encReactionMessage"]).get("targetMessageKey"))
        return SystemEvent("reaction", target)
    if "pollUpdateMessage" in proto:
        target = _key_id(as_dict(proto["pollUpdateMessage"]).get("pollCreationMessageKey"))
        return SystemEvent("poll_vote", target)
    body = as_str(payload.get("body"))
    media = payload.get("hasMedia") is True or isinstance(payload.get("media"), dict)
    rich = any(isinstance(payload.get(k), dict | list) and payload.get(k) for k in
               ("location", "vCards"))  # fmt: skip
    if not body and not media and not rich and set(proto) <= _BOOKKEEPING_KEYS:
        return SystemEvent("protocol")  # nothing a person wrote: a key share, a pin, a shell
    return None


def text_of(content: dict[str, Any]) -> str | None:
    """The text of Baileys/whatsmeow message content (text, or a caption)."""
    for _ in range(3):
        if as_str(content.get("conversation")):
            return as_str(content.get("conversation"))
        for key, field in (
            ("extendedTextMessage", "text"),
            ("imageMessage", "caption"),
            ("videoMessage", "caption"),
            ("documentMessage", "caption"),
        ):
            value = as_str(as_dict(content.get(key)).get(field))
            if value:
                return value
        inner = next((as_dict(as_dict(content.get(w)).get("message")) for w in _PROTO_WRAPPERS
                      if w in content), {})  # fmt: skip
        if not inner:
            return None
        content = inner
    return None


def message_key(payload: dict[str, Any], data: dict[str, Any], message_id: str) -> str:
    """WhatsApp's own id of a message, the same whichever chat id WAHA filed it under.

    From ``_data`` (NOWEB ``key.id``, GOWS ``Info.ID``, WEBJS ``id.id``), else the part of
    WAHA's ``<fromMe>_<chat>_<key>[_<participant>]`` id after the chat.
    """
    for value in (
        as_dict(data.get("key")).get("id"),
        as_dict(data.get("Info")).get("ID"),
        as_dict(data.get("id")).get("id"),
    ):
        key = as_str(value)
        if key and len(key) <= 200:
            return key
    return bare_key(message_id)


def bare_key(message_id: str) -> str:
    """``false_<chat>_<KEY>[_<participant>]`` → ``KEY``; a bare key is returned as is."""
    parts = message_id.split("_")
    if len(parts) >= 3 and parts[0] in ("true", "false"):
        return parts[2]
    return parts[-1]


def _key_id(key: Any) -> str | None:
    """The id in a Baileys/whatsmeow message key (``id`` or ``ID``)."""
    found = as_dict(key)
    value = as_str(found.get("id")) or as_str(found.get("ID"))
    return value if value and len(value) <= 200 else None


def kind_of(
    payload: dict[str, Any], data: dict[str, Any], body: str, mimetype: str | None, has_media: bool
) -> MessageKind:
    """What the message is; engine markers first, then the media mimetype, then the body."""
    proto = proto_message(data)
    audio = as_dict(proto.get("audioMessage"))
    if audio:
        ptt = audio.get("ptt", audio.get("PTT"))
        if isinstance(ptt, bool):
            return "voice" if ptt else "audio"
    webjs_type = as_str(data.get("type"))
    if webjs_type in _WEBJS_TYPES:
        return _WEBJS_TYPES[webjs_type]
    for key, kind in _PROTO_KEYS.items():
        if key in proto:
            return kind
    mime = (mimetype or "").lower()
    if mime.startswith("audio/ogg") and not body:
        return "voice"
    if audio or mime.startswith("audio/"):
        return "audio"
    if mime == "image/webp":
        return "sticker"
    if mime.startswith("image/"):
        return "image"
    if mime.startswith("video/"):
        return "video"
    if isinstance(payload.get("location"), dict):
        return "location"
    if isinstance(payload.get("vCards"), list) and payload["vCards"]:
        return "contact"
    if has_media:
        return "document"
    return "text" if body else "other"


def push_name(data: dict[str, Any]) -> str | None:
    """The sender's WhatsApp display name (WEBJS notifyName, NOWEB pushName, GOWS PushName)."""
    info = as_dict(data.get("Info"))
    for value in (data.get("notifyName"), data.get("pushName"), data.get("PushName")):
        if as_str(value):
            return as_str(value)
    return as_str(info.get("PushName"))


def alt_chat_id(data: dict[str, Any]) -> str | None:
    """The other id of the sender: NOWEB ``key.remoteJidAlt`` / ``key.participantAlt``, GOWS
    ``Info.SenderAlt`` / ``Info.RecipientAlt``."""
    key = as_dict(data.get("key"))
    info = as_dict(data.get("Info"))
    for value in (
        key.get("remoteJidAlt"),
        key.get("participantAlt"),
        info.get("SenderAlt"),
        info.get("RecipientAlt"),
        data.get("SenderAlt"),
    ):
        jid = as_str(value)
        if jid and "@" in jid:
            return normalize_chat_id(jid)
    return None


def referral(data: dict[str, Any]) -> dict[str, str] | None:
    """Click-to-WhatsApp ad details (WEBJS ``ctwaContext``, Baileys ``externalAdReply``)."""
    found: dict[str, str] = {}
    ctwa = as_dict(data.get("ctwaContext"))
    if ctwa:
        _pick(found, ctwa, source="sourceType", title="title", url="sourceUrl", id="sourceId")
        _pick(found, ctwa, body="description", source="conversionSource")
    for content in proto_message(data).values():
        context = as_dict(as_dict(content).get("contextInfo"))
        if not context:
            continue
        ad = as_dict(context.get("externalAdReply"))
        _pick(found, ad, source="sourceType", title="title", url="sourceUrl", id="sourceId")
        _pick(found, ad, body="body", clid="ctwaClid")
        _pick(found, context, source="entryPointConversionSource")
        _pick(found, context, source="conversionSource")
    return found or None


def _pick(found: dict[str, str], obj: dict[str, Any], /, **fields: str) -> None:
    for name, key in fields.items():
        value = obj.get(key)
        if name not in found and isinstance(value, str) and value:
            found[name] = value[:1000]
        elif name not in found and isinstance(value, int) and not isinstance(value, bool):
            found[name] = str(value)


def as_str(value: Any) -> str | None:
    """``value`` if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` if it is a dict, else an empty dict."""
    return value if isinstance(value, dict) else {}
