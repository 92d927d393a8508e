"""The secretaries' workspace in the runner: ``/login``, ``/inbox``, live events, re-notices.

Registered by one call in :func:`clinicflow.runner.app.create_app` (:func:`add_workspace_routes`)::

    GET  /login, POST /login, POST /logout       session cookie (CSRF on both forms)
    GET  /inbox                                  the queue (and the page's live script)
    GET  /inbox/c/{chat_id}                      one conversation, with its action forms
    POST /inbox/c/{chat_id}/{action}             reply, handback, scheduled, close, claim,
                                                 release, transfer (CSRF)
    POST /inbox/availability                     a secretary's on-duty switch (CSRF)
    GET  /inbox/queue, /inbox/c/{chat_id}/live   fragments the script reloads
    GET  /inbox/events                           server-sent events (``event: desk``)
    GET  /inbox/static/{inbox.js,inbox.css}

A background task re-notices unclaimed urgent hand-offs (:func:`renotify`).

Mounted under a path (``parent.add_subapp("/c/<clinic>", app)``, :data:`BASE`), every link,
redirect, ``next`` accepted after login and cookie path starts with that path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from importlib import resources
from typing import Any
from urllib.parse import quote, unquote
from zoneinfo import ZoneInfo

from aiohttp import web

from clinicflow.clock import Clock
from clinicflow.identity import StaffIds
from clinicflow.outbox import OutMessage
from clinicflow.runner.auth import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    WORKSPACE,
    Workspace,
    base_of,
    csrf_ok,
    login_cookie_path,
    refuse_token_in_url,
    session_cookie_path,
    session_of,
    set_cookie,
)
from clinicflow.runner.keys import BASE, CONFIG, ENGINE, RUNTIME
from clinicflow.runner.metrics import log_event
from clinicflow.staff import pages
from clinicflow.staff.accounts import Accounts
from clinicflow.staff.desk import Actor, Desk, DeskError
from clinicflow.staff.sessions import SESSION_TTL_S, LoginThrottle, Session, Sessions, same_secret
from clinicflow.staff.transcript import read_view

TICK_S = 15.0
MAX_REPLY = 4000
_STATIC = {"inbox.js": "application/javascript", "inbox.css": "text/css"}


def add_workspace_routes(app: web.Application, *, clock: Clock) -> None:
    """Register the workspace on the runner's ``app`` (after the runtime's cleanup_ctx)."""
    app.cleanup_ctx.append(_setup(clock))
    app.on_shutdown.append(_end_streams)
    router = app.router
    router.add_get("/login", login_form)
    router.add_post("/login", login)
    router.add_post("/logout", logout)
    router.add_get("/inbox", inbox)
    router.add_get("/inbox/queue", queue_fragment)
    router.add_get("/inbox/events", events)
    router.add_get("/inbox/static/{name}", static)
    router.add_post("/inbox/availability", availability)
    router.add_get("/inbox/c/{chat_id}", conversation)
    router.add_get("/inbox/c/{chat_id}/live", live_fragment)
    router.add_post("/inbox/c/{chat_id}/{action}", act)


def _setup(clock: Clock) -> Callable[[web.Application], AsyncIterator[None]]:
    async def setup(app: web.Application) -> AsyncIterator[None]:
        runtime, config = app[RUNTIME], app[CONFIG]
        accounts = Accounts(runtime.conn, clock)
        desk = Desk(
            runtime.conn,
            app[ENGINE].store,
            accounts,
            hours=lambda: app[ENGINE].hours,
            staff_phones=lambda: [s.phone for s in app[ENGINE].catalog.clinic.staff],
            clock=clock,
            renotify_after_s=config.urgent_renotify,
        )
        app[WORKSPACE] = Workspace(accounts, Sessions(runtime.conn, accounts, clock),
                                   LoginThrottle(clock), desk)  # fmt: skip
        runtime.processor.desk = desk
        runtime.staff = staff_ids(app)
        task = asyncio.create_task(_renotify_loop(app), name="renotify")
        try:
            yield
        finally:
            desk.hub.close()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            runtime.processor.desk = None

    return setup


async def _end_streams(app: web.Application) -> None:
    workspace = app.get(WORKSPACE)
    if workspace is not None:
        workspace.desk.hub.close()


def staff_ids(app: web.Application) -> StaffIds:
    """The staff's WhatsApp ids: clinic.yaml's phones and every active account's phone."""
    phones = [s.phone for s in app[ENGINE].catalog.clinic.staff]
    workspace = app.get(WORKSPACE)
    if workspace is not None:
        phones += [a.phone for a in workspace.accounts.active() if a.phone]
    return StaffIds(phones)


async def renotify(app: web.Application) -> int:
    """Notice again, to everyone, the urgent hand-offs nobody acted on; returns how many."""
    workspace, runtime = app[WORKSPACE], app[RUNTIME]
    due = workspace.desk.renotices()
    if due:
        batch = "renotice:" + secrets.token_hex(6)
        runtime.processor.commit((), [OutMessage(t, text, "handoff_notice", batch)
                                      for t, text in due])  # fmt: skip
        log_event("urgent_renotified", notices=len(due))
    runtime.staff = staff_ids(app)  # accounts added by the CLI while running
    return len(due)


async def _renotify_loop(app: web.Application) -> None:
    while True:
        await asyncio.sleep(TICK_S)
        try:
            await renotify(app)
        except Exception as exc:  # retried on the next tick
            log_event("renotify_failed", 40, error=repr(exc))


# -- helpers ---------------------------------------------------------------------------------


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


def _html(text: str, status: int = 200, **headers: str) -> web.Response:
    return web.Response(text=text, status=status, content_type="text/html", charset="utf-8",
                        headers={**pages.HEADERS, **headers})  # fmt: skip


def _clinic(request: web.Request) -> str:
    return request.app[ENGINE].catalog.clinic.name


def _zone(request: web.Request) -> ZoneInfo:
    return ZoneInfo(request.app[ENGINE].catalog.clinic.hours.timezone)


def _page_user(request: web.Request) -> tuple[Actor, Session]:
    """The logged-in person, or a redirect to the login page (``<base>/login?next=<here>``)."""
    refuse_token_in_url(request)
    found = session_of(request)
    if found is None:
        base = base_of(request)
        nxt = "?next=" + quote(request.path_qs, safe="") if request.path != base + "/" else ""
        raise web.HTTPSeeOther(base + "/login" + nxt)
    session = found[1]
    return Actor.of(session.account, "inbox"), session


def _fragment_user(request: web.Request) -> tuple[Actor, Session]:
    refuse_token_in_url(request)
    found = session_of(request)
    if found is None:
        raise web.HTTPUnauthorized(text="sessão encerrada")
    return Actor.of(found[1].account, "inbox"), found[1]


def _safe_next(value: object, base: str) -> str:
    """Where to go after logging in: ``value`` when it is a path inside this app (it starts
    with ``<base>/``), else ``<base>/inbox``.

    Refused: another origin (``//host``, ``https://…``, a backslash, which browsers read as a
    slash), a control character (browsers drop tabs and newlines: ``/<tab>/host`` is
    ``//host``), and dot segments (``<base>/../b/inbox`` leaves the app).
    """
    text = value if isinstance(value, str) else ""
    path = text.split("?", 1)[0].split("#", 1)[0]
    inside = text.startswith(base + "/") and not text.startswith("//")
    clean = "\\" not in text and not any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)
    dots = any(part in (".", "..") for part in unquote(path).split("/"))
    if inside and clean and not dots:
        return text
    return base + "/inbox"


def _desk(request: web.Request) -> Desk:
    return request.app[WORKSPACE].desk


def _refused(request: web.Request, message: str, status: int = 403) -> web.Response:
    return _html(pages.message_page("Não permitido", message, base=base_of(request)), status)


# -- login -----------------------------------------------------------------------------------


async def login_form(request: web.Request) -> web.StreamResponse:
    refuse_token_in_url(request)
    if session_of(request) is not None:
        raise web.HTTPSeeOther(_safe_next(request.query.get("next"), base_of(request)))
    return _login_page(request, status=200)


def _login_page(request: web.Request, *, status: int, error: str = "", name: str = "",
                next_: str | None = None, **headers: str) -> web.Response:  # fmt: skip
    csrf, base = secrets.token_urlsafe(32), base_of(request)
    nxt = next_ if next_ is not None else _safe_next(request.query.get("next"), base)
    page = pages.login_page(_clinic(request), csrf, error=error, name=name, next_=nxt, base=base)
    response = _html(page, status, **headers)
    set_cookie(response, request, LOGIN_COOKIE, csrf, max_age=3600,
               path=login_cookie_path(base), samesite="Strict")  # fmt: skip
    return response


def _throttled(request: web.Request, wait: float, name: str, next_: str) -> web.Response:
    minutes = max(1, round(wait / 60))
    return _login_page(request, status=429, name=name, next_=next_,
                       error=f"Muitas tentativas erradas. Tente de novo em {minutes} min.",
                       **{"Retry-After": str(int(wait) + 1)})  # fmt: skip


async def login(request: web.Request) -> web.StreamResponse:
    refuse_token_in_url(request)
    form = await request.post()
    cookie = request.cookies.get(LOGIN_COOKIE, "")
    given = form.get("csrf")
    if not isinstance(given, str) or not same_secret(given, cookie):
        return _refused(request, "Formulário inválido ou expirado. Abra a página de entrada de "
                        "novo.")  # fmt: skip
    workspace = request.app[WORKSPACE]
    name = str(form.get("name") or "").strip()[:80]
    password = str(form.get("password") or "")[:1024]
    base = base_of(request)
    next_ = _safe_next(form.get("next"), base)
    address = request.remote or ""
    throttle = workspace.throttle
    wait = throttle.account_wait(name)  # this account is locked: right or wrong, refused
    if wait > 0:
        log_event("login_throttled", 30)
        return _throttled(request, wait, name, next_)
    slowed = throttle.address_wait(address)
    accounts = workspace.accounts
    found = accounts.credentials(name)
    ok = await asyncio.to_thread(accounts.verify, found[1] if found else None, password)
    account = accounts.logged_in(found[0], found[1], password) if ok and found else None
    if account is None:
        throttle.failed(name, address)
        log_event("login_failed", 30)
        # Many wrong passwords from this address (any names): answered 429 to slow it down;
        # a right password from it still logs in (behind a proxy it is everyone's address).
        if slowed > 0:
            log_event("login_throttled", 30)
            return _throttled(request, slowed, name, next_)
        return _login_page(request, status=401, name=name, next_=next_,
                           error="Nome ou senha incorretos.")  # fmt: skip
    workspace.throttle.succeeded(name)
    token, _ = workspace.sessions.open(account)
    log_event("login", account=account.id)
    response = _redirect(next_)
    set_cookie(response, request, SESSION_COOKIE, token, max_age=int(SESSION_TTL_S),
               path=session_cookie_path(base))  # fmt: skip
    response.del_cookie(LOGIN_COOKIE, path=login_cookie_path(base))
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    found, base = session_of(request), base_of(request)
    if found is None:
        return _redirect(base + "/login")
    if not csrf_ok(form.get("csrf"), found[1]):
        return _refused(request, "Formulário inválido ou expirado. Recarregue a página.")
    request.app[WORKSPACE].sessions.close(found[0])
    response = _redirect(base + "/login")
    response.del_cookie(SESSION_COOKIE, path=session_cookie_path(base))
    return response


# -- pages -----------------------------------------------------------------------------------


async def inbox(request: web.Request) -> web.StreamResponse:
    actor, session = _page_user(request)
    desk = _desk(request)
    page = pages.inbox_page(
        _clinic(request), actor, session.csrf, desk.queue(actor),
        now=desk.clock.now(), zone=_zone(request), account=session.account,
        notice=pages.DONE.get(request.query.get("ok", ""), ""), base=base_of(request),
    )  # fmt: skip
    return _html(page)


async def queue_fragment(request: web.Request) -> web.StreamResponse:
    actor, _ = _fragment_user(request)
    desk = _desk(request)
    html = pages.queue_fragment(desk.queue(actor), open_chat=request.query.get("open", ""),
                                now=desk.clock.now(), base=base_of(request))  # fmt: skip
    return _html(html)


async def conversation(request: web.Request) -> web.StreamResponse:
    actor, session = _page_user(request)
    desk, chat_id = _desk(request), _chat(request)
    try:
        desk.require(actor, chat_id)
    except DeskError as exc:
        return _refused(request, str(exc), exc.status)
    view = read_view(desk.store, desk.audit, chat_id)
    if view is None:
        return _refused(request, "Conversa não encontrada.", 404)
    holder = desk.holder(chat_id)
    page = pages.inbox_page(
        _clinic(request), actor, session.csrf, desk.queue(actor),
        now=desk.clock.now(), zone=_zone(request), account=session.account, view=view,
        holder=holder.name if holder else None, people=desk.accounts.active(),
        notice=pages.DONE.get(request.query.get("ok", ""), ""), base=base_of(request),
    )  # fmt: skip
    return _html(page)


async def live_fragment(request: web.Request) -> web.StreamResponse:
    actor, _ = _fragment_user(request)
    desk, chat_id = _desk(request), _chat(request)
    if not desk.can_see(actor, chat_id):
        raise web.HTTPForbidden(text="conversa de outra pessoa")
    view = read_view(desk.store, desk.audit, chat_id)
    if view is None:
        raise web.HTTPNotFound(text="conversa não encontrada")
    holder = desk.holder(chat_id)
    html = pages.conversation_fragment(view, holder=holder.name if holder else None,
                                       zone=_zone(request))  # fmt: skip
    return _html(html)


def _chat(request: web.Request) -> str:
    """The conversation a path names: any id or phone of the patient leads to her identity."""
    named = request.match_info["chat_id"]
    engine = request.app[ENGINE]
    found = request.app[RUNTIME].inbox.identities.find(named, engine.catalog.clinic.country)
    return found or named


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name not in _STATIC:
        raise web.HTTPNotFound()
    body = resources.files("clinicflow.staff").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=_STATIC[name],
                        headers={"Cache-Control": "no-cache",
                                 "X-Content-Type-Options": "nosniff"})  # fmt: skip


# -- actions ---------------------------------------------------------------------------------


async def availability(request: web.Request) -> web.StreamResponse:
    actor, session = _page_user(request)
    form = await request.post()
    if not csrf_ok(form.get("csrf"), session):
        return _refused(request, "Formulário inválido ou expirado. Recarregue a página.")
    if actor.account_id is not None:
        available = form.get("available") == "1"
        request.app[WORKSPACE].accounts.set_available(actor.account_id, available)
        log_event("availability", account=actor.account_id, available=available)
    return _redirect(base_of(request) + "/inbox?ok=availability")


ACTIONS = ("reply", "handback", "scheduled", "close", "claim", "release", "transfer")


async def act(request: web.Request) -> web.StreamResponse:
    actor, session = _page_user(request)
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound()
    form = await request.post()
    if not csrf_ok(form.get("csrf"), session):
        return _refused(request, "Formulário inválido ou expirado. Recarregue a página.")
    chat_id = _chat(request)
    try:
        done = await perform(request.app, actor, chat_id, action, dict(form))
    except DeskError as exc:
        return _refused(request, str(exc), exc.status)
    if not done:
        return _refused(request, "Conversa não encontrada.", 404)
    leaves = action in ("handback", "close", "release", "transfer") and not actor.is_admin
    base = base_of(request)
    target = base + "/inbox" if leaves else pages.chat_path(chat_id, base)
    return _redirect(f"{target}?ok={action}")


def parse_appointment(value: object, zone: ZoneInfo) -> datetime:
    """``YYYY-MM-DDTHH:MM`` (a datetime-local field) in the clinic's zone, or an ISO instant."""
    text = value.strip() if isinstance(value, str) else ""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise DeskError("Data e hora da consulta inválidas.", 400) from None
    return when if when.tzinfo else when.replace(tzinfo=zone)


async def perform(
    app: web.Application, actor: Actor, chat_id: str, action: str, form: dict[str, Any]
) -> bool:
    """Do one action as ``actor`` (the page and the API share it); False: no conversation.

    Raises:
        DeskError: refused (not hers, bad input).
    """
    runtime, desk = app[RUNTIME], app[WORKSPACE].desk
    staff = runtime.processor.staff
    if action == "reply":
        text = str(form.get("text") or "").strip()
        if not text or len(text) > MAX_REPLY:
            raise DeskError(f"Escreva uma mensagem de 1 a {MAX_REPLY} caracteres.", 400)
        return await staff.reply(actor, chat_id, text) is not None
    if action in ("handback", "close", "scheduled"):
        when = None
        if action == "scheduled" and form.get("appointment_at"):
            zone = ZoneInfo(app[ENGINE].catalog.clinic.hours.timezone)
            when = parse_appointment(form.get("appointment_at"), zone)
        out = await staff.act(action, chat_id, actor, appointment_at=when)
        if out is None:
            return False
        runtime.processor.commit((), out)
        return True
    if desk.store.conversation(chat_id) is None:
        return False
    if action == "claim":
        desk.claim(actor, chat_id)
    elif action == "release":
        desk.release(actor, chat_id)
    elif action == "transfer":
        _target, notify = desk.transfer(actor, chat_id, str(form.get("to") or ""))
        if notify is not None:
            conv = desk.store.conversation(chat_id) or {}
            text = (f"📌 {actor.name} passou para você a conversa de "
                    f"{conv.get('patient_name') or 'uma paciente'}. Veja em "
                    f"{app.get(BASE, '')}/inbox.")  # fmt: skip
            runtime.processor.commit(
                (), [OutMessage(notify, text, "handoff_notice", "transfer:" + secrets.token_hex(6))]
            )
    else:
        raise DeskError(f"ação desconhecida {action!r}", 404)
    return True


# -- live events -----------------------------------------------------------------------------


async def events(request: web.Request) -> web.StreamResponse:
    """Server-sent events for the open page: ``event: desk`` with ``{type, chat, urgent,
    name}``, filtered to what this person may see; a comment every 15 s keeps it open."""
    refuse_token_in_url(request)
    found = session_of(request)
    if found is None:
        raise web.HTTPUnauthorized(text="sessão encerrada")
    token, session = found
    actor = Actor.of(session.account, "inbox")
    workspace = request.app[WORKSPACE]
    desk = workspace.desk
    response = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",
    })  # fmt: skip
    await response.prepare(request)
    queue = desk.hub.subscribe()
    try:
        await response.write(b"event: hello\ndata: {}\n\n")
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), TICK_S)
            except TimeoutError:
                if workspace.sessions.get(token) is None:
                    break
                await response.write(b": ping\n\n")
                continue
            if event is None:
                break
            data: dict[str, Any] = {"type": event.type, "chat": "", "urgent": False}
            if event.chat_id and desk.can_see(actor, event.chat_id):
                conv = desk.store.conversation(event.chat_id) or {}
                data.update(chat=event.chat_id, urgent=event.urgent,
                            name=conv.get("patient_name") or "")  # fmt: skip
            elif event.type == "handoff":
                continue  # someone else's: nothing to show, nothing to ring
            payload = json.dumps(data, ensure_ascii=False)
            await response.write(f"event: desk\ndata: {payload}\n\n".encode())
    except ConnectionResetError:
        pass  # the page went away
    finally:
        desk.hub.unsubscribe(queue)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


__all__ = ["add_workspace_routes", "parse_appointment", "perform", "renotify", "staff_ids"]
