"""Reading the engine-specific parts of a WAHA ``WAMessage`` (private to clinicflow).

WAHA passes each engine's raw message through as ``_data``: WEBJS (whatsapp-web.js objects),
NOWEB (Baileys ``{key, message}``) and GOWS (whatsmeow ``{Info, Message}``). The helpers here
dig the kind of message, the sender's name, the alternate chat id and click-to-WhatsApp ad
details out of those shapes, tolerating any type anywhere.
"""

from __future__ import annotations

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
]

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
_PROTO_WRAPPERS = ("ephemeralMessage", "viewOnceMessage", "viewOnceMessageV2", "editedMessage")


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
    """The other id of the sender (NOWEB ``key.remoteJidAlt``, GOWS ``Info.SenderAlt``)."""
    key = as_dict(data.get("key"))
    info = as_dict(data.get("Info"))
    for value in (key.get("remoteJidAlt"), info.get("SenderAlt"), data.get("SenderAlt")):
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
