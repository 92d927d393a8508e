"""Several clinics in one runner: one application per clinic, webhooks routed by WAHA session.

``clinicflow serve --clinics clinics.yaml`` (``CLINICFLOW_CLINICS``) builds, for each clinic of
the file (:mod:`clinicflow.clinics`), the same application a single-clinic runner is
(:func:`clinicflow.runner.app.create_app`) with the clinic's catalog, WAHA session, data
directory and database namespace, and mounts it under ``/c/<id>``::

    POST /webhooks/waha               any clinic's WAHA session: routed by the body's "session"
    POST /c/<id>/webhooks/waha        one clinic's webhooks (a path per WAHA session works too)
    GET  /c/<id>/inbox, /dashboard, /staff/…, /health, /metrics, /admin/reload
    GET  /health                      every clinic's health: 200 while one serves
    GET  /clinics                     the clinics and their state (administrator token only)

Each clinic keeps its own staff accounts, sessions and tokens; the deployment's
``CLINICFLOW_STAFF_TOKEN`` is an administrator in every clinic. A clinic that cannot start (a
broken catalog) is down alone: its routes answer 503, its webhooks wait in its spool until it
starts again, and the others serve (see ``create_app(isolated=True)``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import replace

from aiohttp import web

from clinicflow.clinics import Clinic, Clinics, clinic_data_dir, clinic_database_url
from clinicflow.clock import Clock
from clinicflow.database import DB_NAME, ENV
from clinicflow.runner import ops
from clinicflow.runner.app import create_app, handle_webhook, health_of
from clinicflow.runner.auth import same_secret
from clinicflow.runner.config import ConfigError, RunnerConfig
from clinicflow.runner.keys import CONFIG, STANDING
from clinicflow.runner.metrics import log_event
from clinicflow.webhooks import verify_hmac

__all__ = ["CLINIC_APPS", "clinic_config", "create_clinics_app"]

#: Each clinic's application, by clinic id (in the file's order).
CLINIC_APPS = web.AppKey("clinicflow_clinic_apps", dict[str, web.Application])
_SESSIONS = web.AppKey("clinicflow_clinic_sessions", dict[str, web.Application])
_CLINICS = web.AppKey("clinicflow_clinics", Clinics)


def clinic_config(
    config: RunnerConfig, clinic: Clinic, environ: Mapping[str, str] | None = None
) -> RunnerConfig:
    """The runner configuration of one clinic: the deployment's, with the clinic's catalog,
    WAHA session (and server, when its own), data directory and database namespace.

    Raises:
        ConfigError: the clinic names a key variable (``waha_api_key_env``) that is not set.
    """
    env = os.environ if environ is None else environ
    key = config.waha_api_key
    if clinic.waha_api_key_env:
        key = env.get(clinic.waha_api_key_env) or None
        if key is None:
            raise ConfigError(
                f"{clinic.pos}: a clínica '{clinic.id}' pega a chave do WAHA da variável "
                f"{clinic.waha_api_key_env}, que não está definida"
            )
    data_dir = clinic_data_dir(config.data_dir, clinic.id)
    # Never None: the environment's URL must not stand in for the clinic's own database.
    database_url = clinic_database_url(config.database_url or env.get(ENV), clinic.id)
    return replace(
        config,
        catalog=clinic.catalog,
        waha_session=clinic.session,
        waha_url=clinic.waha_url or config.waha_url,
        waha_api_key=key,
        data_dir=data_dir,
        database_url=database_url or f"sqlite:///{data_dir / DB_NAME}",
        clinics=None,
    )


def create_clinics_app(
    config: RunnerConfig, clinics: Clinics, *, clock: Clock | None = None
) -> web.Application:
    """The runner of several clinics (see the module docstring).

    Args:
        config: the deployment's settings (listen address, WAHA, database, tokens...).
        clinics: the clinics, from :func:`clinicflow.clinics.load_clinics`.
        clock: the clinics' time source (default: the system clock), as for ``create_app``.

    Raises:
        ConfigError: a clinic's settings cannot be built (:func:`clinic_config`).
    """
    app = web.Application(client_max_size=config.max_body)
    app[CONFIG] = config
    apps: dict[str, web.Application] = {}
    for clinic in clinics.clinics:
        base = f"/c/{clinic.id}"
        sub = create_app(clinic_config(config, clinic), clock=clock, base=base, isolated=True)
        app.add_subapp(base, sub)
        apps[clinic.id] = sub
    app[CLINIC_APPS] = apps
    app[_SESSIONS] = {clinic.session: apps[clinic.id] for clinic in clinics.clinics}
    app[_CLINICS] = clinics
    app.middlewares.append(_misdirected)
    app.router.add_post(ops.WEBHOOK_PATH, routed_webhook)
    app.router.add_get("/health", clinics_health)
    app.router.add_get("/clinics", clinics_index)
    return app


async def routed_webhook(request: web.Request) -> web.StreamResponse:
    """``POST /webhooks/waha`` shared by every clinic: the body's ``session`` names the clinic;
    that clinic's webhook handler takes it from there (signature, parsing, storing)."""
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return web.json_response({"error": "body too large"}, status=413)
    key = request.app[CONFIG].waha_hmac_key
    if key and not verify_hmac(raw, key, request.headers.get("X-Webhook-Hmac")):
        # Checked before routing: an unsigned caller learns nothing of which sessions exist.
        return web.json_response({"error": "missing or invalid X-Webhook-Hmac"}, status=401)
    session = _session_of(raw)
    if session is None:
        return web.json_response({"error": "not a WAHA webhook (no session)"}, status=400)
    clinic_app = request.app[_SESSIONS].get(session)
    if clinic_app is None:
        log_event("webhook_unknown_session", 30, session=session[:64])
        body = {"status": "ignored", "reason": "no clinic for this session"}
        return web.json_response(body)
    return await ops.tracked(clinic_app, handle_webhook(clinic_app, request))


@web.middleware
async def _misdirected(request: web.Request, handler: ops.Handler) -> web.StreamResponse:
    """A webhook posted to one clinic's path with another clinic's session (WAHA's webhook of
    that number pointed at the wrong ``/c/<id>/``) goes to the clinic whose session it is,
    and the mistake is logged: answered by the wrong clinic it would leak, and acknowledged
    and dropped every message of that number would be lost."""
    path = request.path
    if request.method != "POST" or not (path.startswith("/c/") and path.endswith(ops.WEBHOOK_PATH)):
        return await handler(request)
    own = request.app[CLINIC_APPS].get(path[len("/c/") : -len(ops.WEBHOOK_PATH)])
    if own is None:
        return await handler(request)
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return await handler(request)  # which answers 413
    session = _session_of(raw)
    if session is None or session == own[CONFIG].waha_session:
        return await handler(request)
    target = request.app[_SESSIONS].get(session)
    log_event("webhook_misdirected", 30, path=path, session=session[:64],
              to=target[CONFIG].waha_session if target is not None else "-")  # fmt: skip
    if target is None:
        return web.json_response({"status": "ignored", "reason": "no clinic for this session"})
    return await ops.tracked(target, handle_webhook(target, request))


def _session_of(raw: bytes) -> str | None:
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    session = body.get("session") if isinstance(body, dict) else None
    return session if isinstance(session, str) and session else None


async def clinics_health(request: web.Request) -> web.Response:
    """``GET /health``: each clinic's own ``/c/<id>/health`` body under its id. 200 while at
    least one clinic serves; ``status`` is ``ok`` when all do, ``degraded`` when some do."""
    states: dict[str, object] = {}
    up = 0
    for clinic_id, clinic_app in request.app[CLINIC_APPS].items():
        if clinic_app[STANDING].down is not None:
            states[clinic_id] = {"status": "down", "error": clinic_app[STANDING].public}
            continue
        states[clinic_id], ok = health_of(clinic_app)
        up += ok
    status = "ok" if up == len(states) else "degraded" if up else "error"
    return web.json_response({"status": status, "clinics": states}, status=200 if up else 503)


async def clinics_index(request: web.Request) -> web.Response:
    """``GET /clinics`` (the deployment's administrator token): each clinic's id, session,
    state and the paths of its pages and API."""
    token = request.app[CONFIG].staff_token
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not token or scheme.lower() != "bearer" or not same_secret(given.strip(), token):
        raise web.HTTPUnauthorized(
            text="só com o token de administração (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": 'Bearer realm="clinicflow"'},
        )
    listed = []
    for clinic in request.app[_CLINICS].clinics:
        clinic_app = request.app[CLINIC_APPS][clinic.id]
        base = f"/c/{clinic.id}"
        listed.append({
            "id": clinic.id,
            "session": clinic.session,
            "catalog": str(clinic.catalog),
            "status": "down" if clinic_app[STANDING].down else "up",
            "error": clinic_app[STANDING].down,
            "webhook": base + ops.WEBHOOK_PATH,
            "inbox": base + "/inbox",
            "dashboard": base + "/dashboard",
            "staff_api": base + "/staff/conversations",
        })  # fmt: skip
    return web.json_response({"clinics": listed})
