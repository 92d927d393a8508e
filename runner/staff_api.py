"""The staff API: conversations waiting for a person, their brief and transcript, actions.

Every route needs ``Authorization: Bearer <CLINICFLOW_STAFF_TOKEN>`` (401 otherwise). With no
token configured the whole API answers 403 and says how to enable it::

    GET  /staff/conversations?status=waiting_human   list (status=all for every chat)
    GET  /staff/conversations/{chat_id}               brief, state and transcript
    POST /staff/conversations/{chat_id}/handback      back to the bot (replies go out)
    POST /staff/conversations/{chat_id}/close         close it
    POST /staff/conversations/{chat_id}/scheduled     the lead is booked
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any

from aiohttp import web

from runner.keys import CONFIG, ENGINE, RUNTIME

_LIST_COLUMNS = (
    "chat_id, status, patient_name, handoff_reason, urgent, script_id, state, lead_status, "
    "updated_at, last_inbound_at"
)


def add_routes(app: web.Application) -> None:
    """Register the staff routes on ``app``."""
    app.router.add_get("/staff/conversations", list_conversations)
    app.router.add_get("/staff/conversations/{chat_id}", show_conversation)
    for action in ("handback", "close", "scheduled"):
        app.router.add_post(f"/staff/conversations/{{chat_id}}/{action}", act)


def _check(request: web.Request) -> None:
    token = request.app[CONFIG].staff_token
    if not token:
        raise _error(web.HTTPForbidden, "staff API disabled: set CLINICFLOW_STAFF_TOKEN")
    given = request.headers.get("Authorization", "")
    scheme, _, value = given.partition(" ")
    ok = scheme.lower() == "bearer" and hmac.compare_digest(_bytes(value.strip()), _bytes(token))
    if not ok:
        raise _error(web.HTTPUnauthorized, "missing or wrong bearer token", bearer=True)


def _bytes(text: str) -> bytes:
    """A header value as bytes; undecodable bytes (``Bearer \\xff``) stay bytes, never raise."""
    return text.encode("utf-8", "surrogateescape")


def _error(kind: type[web.HTTPException], message: str, *, bearer: bool = False) -> Exception:
    headers = {"WWW-Authenticate": 'Bearer realm="clinicflow"'} if bearer else None
    return kind(
        text=json.dumps({"error": message}), content_type="application/json", headers=headers
    )


def _identity(request: web.Request) -> str:
    """The conversation a path names: any id or phone of the patient leads to her identity."""
    named = request.match_info["chat_id"]
    engine = request.app[ENGINE]
    found = request.app[RUNTIME].inbox.identities.find(named, engine.catalog.clinic.country)
    return found or named


async def list_conversations(request: web.Request) -> web.Response:
    """Conversations in a status (default ``waiting_human``), most recent first."""
    _check(request)
    status = request.query.get("status", "waiting_human")
    store = request.app[ENGINE].store
    sql = f"SELECT {_LIST_COLUMNS} FROM conversations"
    params: tuple[Any, ...] = ()
    if status != "all":
        sql += " WHERE status = ?"
        params = (status,)
    rows = await asyncio.to_thread(store.query, sql + " ORDER BY updated_at DESC LIMIT 500", params)
    return web.json_response({"conversations": rows})


async def show_conversation(request: web.Request) -> web.Response:
    """One conversation: its row, the open hand-off brief and the transcript."""
    _check(request)
    chat_id = _identity(request)
    store = request.app[ENGINE].store

    def read() -> dict[str, Any] | None:
        conv = store.conversation(chat_id)
        if conv is None:
            return None
        handoff = store.open_handoff(chat_id)
        if handoff is not None:
            handoff["brief"] = json.loads(handoff.get("brief") or "null")
            handoff["red_flags"] = json.loads(handoff.get("red_flags") or "[]")
        messages = [
            {k: m[k] for k in ("direction", "text", "kind", "at")} for m in store.messages(chat_id)
        ]
        return {"conversation": conv, "handoff": handoff, "messages": messages}

    found = await asyncio.to_thread(read)
    if found is None:
        raise _error(web.HTTPNotFound, f"no conversation {chat_id}")
    return web.json_response(found)


async def act(request: web.Request) -> web.Response:
    """Hand back, close or mark scheduled (the last path segment says which)."""
    _check(request)
    chat_id = _identity(request)
    action = request.path.rsplit("/", 1)[1]
    processor = request.app[RUNTIME].processor
    out = await processor.staff.act(action, chat_id)
    if out is None:
        raise _error(web.HTTPNotFound, f"no conversation {chat_id}")
    processor.commit((), out)
    return web.json_response({"ok": True, "action": action, "chat_id": chat_id,
                              "messages": len(out)})  # fmt: skip


__all__ = ["add_routes"]
