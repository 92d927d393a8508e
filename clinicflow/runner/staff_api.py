"""The staff API: conversations waiting for a person, their brief and transcript, actions.

Every route needs ``Authorization: Bearer <token>``: a personal token
(``clinicflow staff token NAME``) acts as its owner, ``CLINICFLOW_STAFF_TOKEN`` as an
administrator (401 otherwise; a token in the URL is refused with 400). With neither a shared
token nor any account the whole API answers 403 and says how to enable it. A secretary's
token sees and acts on her conversations and the unassigned queue only (403 otherwise)::

    GET  /staff/conversations?status=waiting_human   list (status=all for every chat)
    GET  /staff/conversations/{chat_id}               brief, state, transcript, holder
    POST /staff/conversations/{chat_id}/reply         {"text": "..."}: a human message
    POST /staff/conversations/{chat_id}/handback      back to the bot (replies go out)
    POST /staff/conversations/{chat_id}/close         close it
    POST /staff/conversations/{chat_id}/scheduled     booked; {"appointment_at": ISO} optional
    POST /staff/conversations/{chat_id}/claim         take it (a personal token)
    POST /staff/conversations/{chat_id}/release       back to the queue
    POST /staff/conversations/{chat_id}/transfer      {"to": "Name"}
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from clinicflow.runner.auth import WORKSPACE, api_actor, json_error
from clinicflow.runner.keys import ENGINE, RUNTIME
from clinicflow.runner.workspace import perform
from clinicflow.staff.desk import DeskError

_LIST_COLUMNS = (
    "chat_id, status, patient_name, handoff_reason, urgent, script_id, state, lead_status, "
    "updated_at, last_inbound_at"
)
ACTIONS = ("reply", "handback", "close", "scheduled", "claim", "release", "transfer")


def add_routes(app: web.Application) -> None:
    """Register the staff routes on ``app``."""
    app.router.add_get("/staff/conversations", list_conversations)
    app.router.add_get("/staff/conversations/{chat_id}", show_conversation)
    for action in ACTIONS:
        app.router.add_post(f"/staff/conversations/{{chat_id}}/{action}", act)


def _check(request: web.Request) -> None:
    """Only an administrator (the shared token, or an admin's personal token)."""
    actor = api_actor(request)
    if not actor.is_admin:
        raise json_error(web.HTTPForbidden, "administrators only")


def _identity(request: web.Request) -> str:
    """The conversation a path names: any id or phone of the patient leads to her identity."""
    named = request.match_info["chat_id"]
    engine = request.app[ENGINE]
    found = request.app[RUNTIME].inbox.identities.find(named, engine.catalog.clinic.country)
    return found or named


async def list_conversations(request: web.Request) -> web.Response:
    """Conversations in a status (default ``waiting_human``), most recent first; a
    secretary's list holds only hers and the unassigned queue."""
    actor = api_actor(request)
    status = request.query.get("status", "waiting_human")
    store = request.app[ENGINE].store
    sql = f"SELECT {_LIST_COLUMNS} FROM conversations"
    params: tuple[Any, ...] = ()
    if status != "all":
        sql += " WHERE status = ?"
        params = (status,)
    rows = await asyncio.to_thread(store.query, sql + " ORDER BY updated_at DESC LIMIT 500", params)
    desk = request.app[WORKSPACE].desk
    if not actor.is_admin:
        rows = [r for r in rows if desk.can_see(actor, r["chat_id"])]
    held = desk.assignments.all()
    names = {a.id: a.name for a in desk.accounts.all()}
    for row in rows:
        holder = held.get(row["chat_id"])
        row["assigned_to"] = names.get(holder.account_id) if holder else None
    return web.json_response({"conversations": rows})


async def show_conversation(request: web.Request) -> web.Response:
    """One conversation: its row, the open hand-off brief, the transcript and its holder."""
    actor = api_actor(request)
    chat_id = _identity(request)
    store = request.app[ENGINE].store
    desk = request.app[WORKSPACE].desk
    try:
        desk.require(actor, chat_id)
    except DeskError as exc:
        raise json_error(web.HTTPForbidden, str(exc)) from None

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
        raise json_error(web.HTTPNotFound, f"no conversation {chat_id}")
    holder = desk.holder(chat_id)
    found["assigned_to"] = holder.name if holder else None
    return web.json_response(found)


async def act(request: web.Request) -> web.Response:
    """An action (the last path segment says which), as the token's owner."""
    actor = api_actor(request)
    chat_id = _identity(request)
    action = request.path.rsplit("/", 1)[1]
    body: dict[str, Any] = {}
    if request.can_read_body:
        try:
            parsed = await request.json()
        except ValueError:
            raise json_error(web.HTTPBadRequest, "the body must be JSON") from None
        body = parsed if isinstance(parsed, dict) else {}
    try:
        done = await perform(request.app, actor, chat_id, action, body)
    except DeskError as exc:
        status = {400: web.HTTPBadRequest, 404: web.HTTPNotFound}.get(exc.status, web.HTTPForbidden)
        raise json_error(status, str(exc)) from None
    if not done:
        raise json_error(web.HTTPNotFound, f"no conversation {chat_id}")
    return web.json_response({"ok": True, "action": action, "chat_id": chat_id,
                              "by": actor.name})  # fmt: skip


__all__ = ["ACTIONS", "add_routes"]
