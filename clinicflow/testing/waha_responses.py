"""The bodies WAHA's REST API answers with, successes and errors, as plain dicts.

Kept apart from the server in :mod:`clinicflow.testing.fake_waha` so tests can compare a
client's handling against the exact shapes (NestJS errors, per-engine ``sendText`` answers).
"""

from __future__ import annotations

import time
from typing import Any

from clinicflow.testing import waha_messages as wp

SEND_TEXT_SHAPES = ("NOWEB", "WEBJS", "GOWS", "empty")
_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def unauthorized() -> dict[str, Any]:
    """401 for a missing or wrong API key."""
    return {"message": "Unauthorized", "statusCode": 401}


def nest_error(status: int, message: str | list[str]) -> dict[str, Any]:
    """A NestJS error body (400 validation, 404 route, 500 engine failure...)."""
    error: dict[str, Any] = {
        "statusCode": status,
        "message": message,
        "error": _REASONS.get(status, "Error"),
    }
    if status >= 500:
        error["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        error["exception"] = {"message": message, "name": "Error", "stack": ""}
    return error


def no_session(name: str) -> dict[str, Any]:
    """404 for a session that does not exist."""
    message = (
        f"We didn't find a session with name '{name}'.\n"
        f"Please start it first by using POST /api/sessions/{name}/start request"
    )
    return {"statusCode": 404, "message": message, "error": "Not Found"}


def not_working(session: str, status: str) -> dict[str, Any]:
    """422 when a send call finds the session in a status other than WORKING."""
    return {
        "error": "Session status is not as expected. Try again later or restart the session",
        "session": session,
        "status": status,
        "expected": ["WORKING"],
    }


def file_not_found() -> dict[str, Any]:
    """404 for a media file that never existed or has expired."""
    return {
        "error": {
            "code": 404,
            "key": "FILE_NOT_FOUND",
            "message": "File not found",
            "details": "File not found or no longer available",
        }
    }


def send_text_answer(
    shape: str, chat_id: str, text: str, wa_id: str, me_id: str = wp.DEFAULT_ME
) -> dict[str, Any] | None:
    """What ``POST /api/sendText`` answers, per engine; None means an empty body.

    Args:
        shape: ``NOWEB`` (Baileys ``key``), ``WEBJS`` (``id._serialized``), ``GOWS`` (a
            ``WAMessage`` with a string id) or ``empty`` (WAHA 2025.6.5).
        chat_id: the chat sent to.
        text: the text sent.
        wa_id: the WhatsApp id given to the new message.
        me_id: our own number.
    """
    message_id = wp.serialize_id(True, chat_id, wa_id)
    now = int(time.time())
    if shape == "empty":
        return None
    if shape == "NOWEB":
        return {
            "key": {"remoteJid": wp.to_jid(chat_id), "fromMe": True, "id": wa_id},
            "message": {"extendedTextMessage": {"text": text}},
            "messageTimestamp": str(now),
            "status": "PENDING",
        }
    if shape in ("WEBJS", "WPP"):
        return {
            "id": {"fromMe": True, "remote": chat_id, "id": wa_id, "_serialized": message_id},
            "ack": 0,
            "hasMedia": False,
            "body": text,
            "type": "chat",
            "timestamp": now,
            "from": me_id,
            "to": chat_id,
            "fromMe": True,
        }
    answer = wp.wa_message(chat_id, text, engine="GOWS", from_me=True, msg_id=message_id)
    answer["source"] = "api"
    return answer


def session_info(
    name: str, status: str, engine: str, me_id: str, config: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``GET /api/sessions/{name}``: a SessionInfo (``me`` only once WORKING)."""
    return {
        "name": name,
        "status": status,
        "config": config if config is not None else {"webhooks": []},
        "me": {"id": me_id, "pushName": "Clínica"} if status == "WORKING" else None,
        "presence": None,
        "timestamps": {"activity": int(time.time() * 1000)},
        "engine": {"engine": engine},
    }


def session_dto(name: str, status: str, config: dict[str, Any]) -> dict[str, Any]:
    """``PUT /api/sessions/{name}``: the SessionDTO of the updated session."""
    return {"name": name, "status": status, "config": config}


def webhook_config_errors(config: Any) -> list[str]:
    """WAHA's validation messages for a session config's ``webhooks`` (empty: valid)."""
    if not isinstance(config, dict):
        return ["config must be an object"]
    hooks = config.get("webhooks", [])
    if not isinstance(hooks, list):
        return ["config.webhooks must be an array"]
    errors: list[str] = []
    for i, hook in enumerate(hooks):
        where = f"config.webhooks.{i}"
        if not isinstance(hook, dict):
            errors.append(f"{where} must be an object")
            continue
        if not isinstance(hook.get("url"), str) or not hook["url"]:
            errors.append(f"{where}.url must be a string")
        events = hook.get("events")
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            errors.append(f"{where}.events must be an array")
        retries = hook.get("retries")
        if retries is not None and (
            not isinstance(retries, dict)
            or retries.get("policy") not in (None, "linear", "exponential", "constant")
        ):
            errors.append(f"{where}.retries.policy must be one of linear, exponential, constant")
        hmac_config = hook.get("hmac")
        if hmac_config is not None and not isinstance(hmac_config, dict):
            errors.append(f"{where}.hmac must be an object")
    return errors


def health() -> dict[str, Any]:
    """``GET /health`` when everything is fine."""
    return {"status": "ok", "info": {}, "error": {}, "details": {}}


def server_version(version: str, engine: str) -> dict[str, Any]:
    """``GET /api/server/version``."""
    return {"version": version, "engine": engine, "tier": "CORE", "browser": None}
