"""Parsing and verification of the webhooks WAHA posts to us.

Everything here is pure and fast: no I/O, no clock. :func:`parse_webhook` turns the raw body
into one of three values, and raises nothing but :class:`~clinicflow.errors.WebhookError`
(whose ``status`` is the HTTP code to answer with), whatever the body holds::

    parse_webhook(raw) -> Inbound          a message / message.any event, engine differences
                                           smoothed out (chat id, voice notes, ad referrals),
                                           or an event about a message: message.edited,
                                           message.revoked, message.reaction, call.received
                                           (``kind`` edit / revoke / reaction / call)
                       -> SessionStatus    a session.status event (track WORKING)
                       -> Ignored          any other event, or a chat id that is not a
                                           well-formed WhatsApp id (``bad_id``); answer 200

Text is cleaned at the door: a lone UTF-16 surrogate (which JSON allows, and SQLite cannot
store) becomes U+FFFD, in every string of the body.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass, replace
from typing import Any, Literal

from clinicflow._wamessage import (
    SYSTEM_KINDS,
    MessageKind,
    SystemEvent,
    alt_chat_id,
    as_dict,
    as_str,
    bare_key,
    kind_of,
    message_key,
    normalize_chat_id,
    push_name,
    referral,
    system_event,
)
from clinicflow.errors import WebhookError
from clinicflow.phones import well_formed_chat_id

ChatKind = Literal["direct", "lid", "group", "status", "broadcast", "newsletter", "unknown"]

MAX_WEBHOOK_BYTES = 256 * 1024
_MESSAGE_EVENTS = frozenset({"message", "message.any"})
# Events about a message, read into an Inbound whose kind says which.
_ABOUT_EVENTS = frozenset(
    {"message.edited", "message.revoked", "message.reaction", "call.received"}
)
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Inbound:
    """One ``message`` or ``message.any`` event, with the engine differences smoothed out.

    ``chat_id`` is the conversation as received (the other party even for ``from_me``
    messages); ``alt_chat_id`` is the phone-number (or lid) twin found in ``_data``.
    ``media_error`` is true when the message has media that cannot be downloaded (WAHA
    reported an error, or skipped the download). ``timestamp`` is unix seconds. ``source``
    (``api``: sent through WAHA, ``app``: typed on a phone) matters only when ``from_me``.

    ``wa_key`` is WhatsApp's own message id (the same when WAHA delivers one message under
    the ``@lid`` and the ``@c.us`` id). For an event about another message (``kind`` edit,
    revoke, reaction, poll_vote) ``target_key`` is that message's key and ``text`` the new
    text of an edit ("" when the engine does not show it) or the reaction's emoji.
    """

    event: str
    session: str
    envelope_id: str | None
    message_id: str
    chat_id: str
    from_me: bool
    source: str | None
    timestamp: float
    text: str
    kind: MessageKind
    media_url: str | None
    media_mimetype: str | None
    media_error: bool
    push_name: str | None
    alt_chat_id: str | None
    referral: dict[str, str] | None
    raw_payload: dict[str, Any]
    engine: str | None = None
    participant: str | None = None
    wa_key: str = ""
    target_key: str | None = None

    @property
    def is_system(self) -> bool:
        """True for events that are not something a person said (edits, calls, ...)."""
        return self.kind in SYSTEM_KINDS


@dataclass(frozen=True)
class SessionStatus:
    """A ``session.status`` event: the WAHA session moved to ``status`` (e.g. ``WORKING``)."""

    session: str
    status: str


@dataclass(frozen=True)
class Ignored:
    """An event we acknowledge and drop; ``reason`` says why (for logs).

    ``bad_id`` is set when the chat id is not a well-formed WhatsApp id (log it escaped).
    """

    reason: str
    event: str | None = None
    bad_id: str | None = None


def verify_hmac(raw: bytes, key: str, signature: str | None) -> bool:
    """Check WAHA's ``X-Webhook-Hmac`` header (hex HMAC-SHA512 of the raw body).

    Args:
        raw: the request body exactly as received.
        key: the shared HMAC key configured in WAHA.
        signature: the header value; missing or malformed means not verified.
            An empty ``key`` verifies nothing (WAHA does not sign without a key).

    Returns:
        True only when the signature matches, compared in constant time.
    """
    if not signature or not key:
        return False
    try:
        given = signature.strip().lower().encode("ascii")
    except (UnicodeEncodeError, AttributeError):
        return False
    expected = hmac.new(key.encode(), bytes(raw), hashlib.sha512).hexdigest().encode()
    return hmac.compare_digest(given, expected)


def chat_kind(chat_id: str) -> ChatKind:
    """Classify a chat id by its suffix (``@c.us``, ``@lid``, ``@g.us``, ...)."""
    if not isinstance(chat_id, str) or chat_id.count("@") != 1:
        return "unknown"
    user, _, server = chat_id.partition("@")
    if not user:
        return "unknown"
    if server in ("c.us", "s.whatsapp.net"):
        return "direct"
    if server == "lid":
        return "lid"
    if server == "g.us":
        return "group"
    if server == "newsletter":
        return "newsletter"
    if server == "broadcast":
        return "status" if user == "status" else "broadcast"
    return "unknown"


def is_patient_chat(chat_id: str) -> bool:
    """True for one-to-one chats with a person (``@c.us``, ``@s.whatsapp.net``, ``@lid``)."""
    return chat_kind(chat_id) in ("direct", "lid")


def parse_webhook(
    raw: bytes, *, max_bytes: int = MAX_WEBHOOK_BYTES
) -> Inbound | SessionStatus | Ignored:
    """Parse one WAHA webhook body.

    Args:
        raw: the request body bytes.
        max_bytes: bodies longer than this are refused with 413.

    Returns:
        :class:`Inbound` for ``message``/``message.any``, :class:`SessionStatus` for
        ``session.status``, :class:`Ignored` for every other event.

    Raises:
        WebhookError: ``status`` 413 when too large, 400 (with the reason) when the body is not
            a JSON object with an ``event``, or a handled event lacks what we need.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise WebhookError("body must be bytes", status=400)
    if len(raw) > max_bytes:
        raise WebhookError(f"body larger than {max_bytes} bytes", status=413)
    try:
        envelope = json.loads(bytes(raw), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise WebhookError(f"malformed JSON: {type(exc).__name__}", status=400) from None
    if not isinstance(envelope, dict):
        raise WebhookError("envelope is not a JSON object", status=400)
    event = envelope.get("event")
    if not isinstance(event, str) or not event:
        raise WebhookError("envelope has no event", status=400)
    if event not in _MESSAGE_EVENTS | _ABOUT_EVENTS and event != "session.status":
        return Ignored(f"event {event!r} is not handled", event)
    session = envelope.get("session")
    if not isinstance(session, str) or not session:
        raise WebhookError("envelope has no session", status=400)
    payload = envelope.get("payload")
    if not isinstance(payload, dict):
        if event in _ABOUT_EVENTS:  # a side event: nothing to retry for
            return Ignored(f"{event} without a payload", event)
        raise WebhookError("envelope has no payload object", status=400)
    if event == "session.status":
        status = payload.get("status")
        if not isinstance(status, str) or not status:
            raise WebhookError("session.status payload has no status", status=400)
        return SessionStatus(session, status)
    envelope = clean_strings(envelope)
    payload = envelope["payload"]
    if event in _ABOUT_EVENTS:
        return _parse_about(envelope, event, session, payload)
    inbound = _parse_message(envelope, event, session, payload)
    if not well_formed_chat_id(inbound.chat_id):
        return Ignored("malformed chat id", event, bad_id=inbound.chat_id)
    return inbound


def clean_strings(value: Any) -> Any:
    """``value`` with every lone UTF-16 surrogate (in strings and keys) replaced by U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        return {clean_strings(k): clean_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_strings(v) for v in value]
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_about(
    envelope: dict[str, Any], event: str, session: str, payload: dict[str, Any]
) -> Inbound | Ignored:
    """``message.edited`` / ``message.revoked`` / ``message.reaction`` / ``call.received``."""
    found: SystemEvent
    if event == "message.revoked":
        # {after: the revoke message, before: usually null, revokedMessageId}
        carrier = as_dict(payload.get("after")) or as_dict(payload.get("before"))
        target = as_str(payload.get("revokedMessageId"))
        nested = system_event(carrier, as_dict(carrier.get("_data")))
        found = SystemEvent(
            "revoke", bare_key(target) if target else nested.target_key if nested else None
        )
        payload = carrier
    elif event == "message.edited":
        target = as_str(payload.get("editedMessageId"))
        found = SystemEvent("edit", bare_key(target) if target else None)
    elif event == "message.reaction":
        reaction = as_dict(payload.get("reaction"))
        target = as_str(reaction.get("messageId"))
        found = SystemEvent("reaction", bare_key(target) if target else None,
                            as_str(reaction.get("text")) or "")  # fmt: skip
    else:  # call.received: {id, from, timestamp, isVideo, isGroup}
        if not as_str(payload.get("id")) or payload.get("isGroup") is True:
            return Ignored("call without an id, or a group call", event)
        payload = {**payload, "id": f"call_{payload['id']}", "fromMe": False}
        found = SystemEvent("call")
    if not as_str(payload.get("id")) or not as_str(payload.get("from")):
        return Ignored(f"{event} without a message id or a chat", event)
    inbound = _parse_message(envelope, event, session, payload, about=found)
    if not well_formed_chat_id(inbound.chat_id):
        return Ignored("malformed chat id", event, bad_id=inbound.chat_id)
    if found.target_key and inbound.wa_key == found.target_key:
        # Some engines name the edited (or reacted-to) message itself in the event's id: the
        # event gets its own id, or it would be dropped as a copy of that message.
        digest = hashlib.sha1(f"{event}:{inbound.text}".encode(), usedforsecurity=False)
        tag = digest.hexdigest()[:12]
        inbound = replace(
            inbound, message_id=f"{inbound.message_id}#{tag}", wa_key=f"{inbound.wa_key}#{tag}"
        )
    return inbound


def _parse_message(
    envelope: dict[str, Any],
    event: str,
    session: str,
    payload: dict[str, Any],
    *,
    about: SystemEvent | None = None,
) -> Inbound:
    message_id = as_str(payload.get("id"))
    sender = as_str(payload.get("from"))
    if not message_id:
        raise WebhookError(f"{event} payload has no id", status=400)
    if not sender:
        raise WebhookError(f"{event} payload has no from", status=400)
    data = as_dict(payload.get("_data"))
    engine = as_str(envelope.get("engine"))
    from_me = payload.get("fromMe") is True
    source = as_str(payload.get("source"))
    media = as_dict(payload.get("media"))
    media_url = as_str(media.get("url")) or as_str(payload.get("mediaUrl"))
    mimetype = as_str(media.get("mimetype"))
    has_media = payload.get("hasMedia") is True or bool(media)
    body = as_str(payload.get("body")) or ""
    chat_id = _chat_of(envelope, engine, payload, sender, from_me)
    alt = alt_chat_id(data)
    if alt is not None and not well_formed_chat_id(alt):
        alt = None
    system = about or system_event(payload, data)
    kind: MessageKind = system.kind if system else kind_of(payload, data, body, mimetype, has_media)
    if system is not None:
        body = system.text or (body if system.kind == "edit" else "")
    return Inbound(
        event=event,
        session=session,
        envelope_id=as_str(envelope.get("id")),
        message_id=message_id,
        chat_id=chat_id,
        from_me=from_me,
        source=source if source in ("api", "app") else None,
        timestamp=_timestamp(payload.get("timestamp"), envelope.get("timestamp")),
        text=body,
        kind=kind,
        media_url=media_url,
        media_mimetype=mimetype,
        media_error=has_media and (media.get("error") not in (None, False, "") or not media_url),
        push_name=push_name(data),
        alt_chat_id=alt if alt != chat_id else None,
        referral=referral(data),
        raw_payload=payload,
        engine=engine,
        participant=as_str(payload.get("participant")),
        wa_key=message_key(payload, data, message_id),
        target_key=system.target_key if system else None,
    )


def _chat_of(
    envelope: dict[str, Any],
    engine: str | None,
    payload: dict[str, Any],
    sender: str,
    from_me: bool,
) -> str:
    """The chat a message belongs to: WEBJS puts *us* in ``from`` for our own messages."""
    if not from_me:
        return sender
    me = as_dict(envelope.get("me"))
    mine = {as_str(me.get(k)) for k in ("id", "lid", "jid")} - {None}
    mine |= {normalize_chat_id(m) for m in mine if m}
    # WEBJS keeps the chat in `_data.id.remote`; it gives WEBJS away when no engine is named.
    remote = as_str(as_dict(as_dict(payload.get("_data")).get("id")).get("remote"))
    if engine in ("WEBJS", "WPP") or sender in mine or (engine is None and remote):
        return as_str(payload.get("to")) or remote or sender
    return sender


def _timestamp(value: Any, envelope_ms: Any) -> float:
    for candidate, scale in ((value, 1.0), (envelope_ms, 1000.0)):
        if isinstance(candidate, str):
            try:
                candidate = float(candidate)
            except ValueError:
                continue
        if isinstance(candidate, int | float) and not isinstance(candidate, bool):
            try:
                seconds = float(candidate) / scale
            except OverflowError:
                continue
            if math.isfinite(seconds) and seconds >= 0:
                # Some engines report milliseconds; no message is from the year 5000.
                return seconds / 1000.0 if seconds > 1e11 else seconds
    return 0.0


__all__ = [
    "MAX_WEBHOOK_BYTES",
    "SYSTEM_KINDS",
    "ChatKind",
    "Ignored",
    "Inbound",
    "MessageKind",
    "SessionStatus",
    "chat_kind",
    "clean_strings",
    "is_patient_chat",
    "normalize_chat_id",
    "parse_webhook",
    "verify_hmac",
]
