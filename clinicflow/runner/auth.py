"""Who is asking: personal API tokens, the shared staff token, workspace sessions, CSRF.

- ``Authorization: Bearer <token>``: a personal token (``clinicflow staff token NAME``) acts
  as its owner; ``CLINICFLOW_STAFF_TOKEN`` acts as an administrator ("Token da clínica"), so
  setups from before accounts keep working. The API never reads cookies, so a page on
  another site cannot make a browser act through it.
- A token in the URL (``?token=``) is refused with 400 and a message that says why: URLs end
  up in logs, proxies and browser history.
- The workspace pages use the session cookie (HttpOnly, SameSite=Lax, Secure when served
  over https — directly or behind a proxy that says ``X-Forwarded-Proto: https``); every form
  carries the session's CSRF token, and the login form a token of its own (double-submit
  cookie). Both cookies are scoped to the path the app is mounted under (:data:`BASE`): a
  clinic's cookie is never sent to another clinic served by the same ``serve``, and logging
  into one does not log out of another.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import web

from clinicflow.runner.keys import BASE, CONFIG
from clinicflow.staff.accounts import Accounts
from clinicflow.staff.desk import Actor, Desk
from clinicflow.staff.sessions import LoginThrottle, Session, Sessions, same_secret

SESSION_COOKIE = "clinicflow_session"
LOGIN_COOKIE = "clinicflow_login"
URL_TOKEN = (
    "tokens are not accepted in the URL (URLs end up in logs and browser history): send "
    "'Authorization: Bearer <token>', or log in at /login"
)
SHARED_NAME = "Token da clínica"


@dataclass
class Workspace:
    """The workspace's objects, built when the runner starts (``clinicflow.runner.workspace``)."""

    accounts: Accounts
    sessions: Sessions
    throttle: LoginThrottle
    desk: Desk


WORKSPACE = web.AppKey("clinicflow_workspace", Workspace)


def base_of(request: web.Request) -> str:
    """The path the app answering ``request`` is mounted under: "" or ``/c/<clinic>``."""
    return request.app.get(BASE, "")


def session_cookie_path(base: str) -> str:
    """The session cookie's path: the whole app (``<base>/``)."""
    return base + "/"


def login_cookie_path(base: str) -> str:
    """The login form's CSRF cookie's path: the login page only (``<base>/login``)."""
    return base + "/login"


def json_error(kind: type[web.HTTPException], message: str, **headers: str) -> web.HTTPException:
    return kind(text=json.dumps({"error": message}), content_type="application/json",
                headers=headers or None)  # fmt: skip


def refuse_token_in_url(request: web.Request) -> None:
    """400 when a token travels in the query string."""
    if any(key.lower() in ("token", "access_token", "api_key") for key in request.query):
        raise json_error(web.HTTPBadRequest, URL_TOKEN)


def bearer_actor(request: web.Request) -> Actor | None:
    """The actor of a valid ``Authorization: Bearer`` header, else None."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        return None
    shared = request.app[CONFIG].staff_token
    if shared and same_secret(value, shared):
        return Actor(SHARED_NAME, "admin", via="api")
    workspace = request.app.get(WORKSPACE)
    if workspace is None:
        return None
    account = workspace.accounts.by_token(value)
    return Actor.of(account, "api") if account is not None else None


def api_actor(request: web.Request) -> Actor:
    """The API caller, or 400 (token in URL), 403 (API disabled), 401 (no or wrong token)."""
    refuse_token_in_url(request)
    actor = bearer_actor(request)
    if actor is not None:
        return actor
    workspace = request.app.get(WORKSPACE)
    has_accounts = workspace is not None and workspace.accounts.count() > 0
    if not request.app[CONFIG].staff_token and not has_accounts:
        raise json_error(
            web.HTTPForbidden,
            "staff API disabled: set CLINICFLOW_STAFF_TOKEN or create an account "
            "(clinicflow staff add)",
        )
    raise json_error(web.HTTPUnauthorized, "missing or wrong bearer token",
                     **{"WWW-Authenticate": 'Bearer realm="clinicflow"'})  # fmt: skip


def session_of(request: web.Request) -> tuple[str, Session] | None:
    """The cookie's value and its live session, or None."""
    token = request.cookies.get(SESSION_COOKIE)
    workspace = request.app.get(WORKSPACE)
    if not token or workspace is None:
        return None
    session = workspace.sessions.get(token)
    return (token, session) if session is not None else None


def secure(request: web.Request) -> bool:
    """Served over https (directly, or behind a proxy that says so)."""
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def set_cookie(response: web.StreamResponse, request: web.Request, name: str, value: str,
               *, max_age: int, path: str = "/", samesite: str = "Lax") -> None:  # fmt: skip
    response.set_cookie(name, value, max_age=max_age, path=path, httponly=True,
                        samesite=samesite, secure=secure(request))  # fmt: skip


async def admin_access(request: web.Request) -> None:
    """The dashboard's gate: an administrator's token or session (401/403 otherwise)."""
    actor = bearer_actor(request)
    if actor is None and "Authorization" not in request.headers:
        found = session_of(request)
        actor = Actor.of(found[1].account, "inbox") if found else None
    if actor is None:
        raise web.HTTPUnauthorized(
            text=f"entre em {base_of(request)}/login com uma conta de administradora, ou envie "
            "'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="clinicflow"'},
        )
    if not actor.is_admin:
        raise web.HTTPForbidden(text="o painel é só para administradoras")


def csrf_ok(given: object, session: Session) -> bool:
    return isinstance(given, str) and same_secret(given, session.csrf)


__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "URL_TOKEN",
    "WORKSPACE",
    "Workspace",
    "admin_access",
    "api_actor",
    "base_of",
    "bearer_actor",
    "csrf_ok",
    "login_cookie_path",
    "refuse_token_in_url",
    "session_cookie_path",
    "session_of",
    "set_cookie",
]
