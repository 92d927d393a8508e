"""Operations around the runner: catalog reload, webhook arrivals, the daily retention job.

- **Reload** edited scripts without a restart: ``POST /admin/reload`` (staff token) or
  ``SIGHUP``. A catalog with errors is refused and the lint lines are returned (and logged);
  the running catalog stays. Conversations in flight keep the script version they started on.
- **Webhook arrivals**: every ``POST /webhooks/waha`` is noted (time and HTTP status) so
  ``/health`` and ``clinicflow waha status`` can tell whether WAHA reaches the runner.
- **Retention** (LGPD): once a day, message texts older than ``privacy.retention_days`` of
  clinic.yaml are redacted (:func:`clinicflow.privacy.redact_expired`).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from clinicflow.clock import Clock
from clinicflow.errors import ScriptError
from clinicflow.runner.keys import BASE, CONFIG, ENGINE, RUNTIME, STANDING
from clinicflow.runner.metrics import log_event

__all__ = [
    "RETENTION_EVERY_S",
    "WebhookArrivals",
    "add_routes",
    "install_sighup",
    "reload_catalog",
    "retention_loop",
    "track_webhooks",
    "tracked",
]

WEBHOOK_PATH = "/webhooks/waha"
RETENTION_EVERY_S = 24 * 3600.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class WebhookArrivals:
    """When the last webhook arrived (wall time) and how the runner answered it."""

    last_at: float | None = None
    last_status: int | None = None
    count: int = 0

    def as_dict(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "received": self.count,
            "last_at": (
                datetime.fromtimestamp(self.last_at, UTC).isoformat(timespec="seconds")
                if self.last_at is not None
                else None
            ),
            "seconds_ago": round(now - self.last_at, 1) if self.last_at is not None else None,
            "last_status": self.last_status,
        }


@dataclass
class OpsState:
    """What the operations keep between requests (one per app, set up by add_routes)."""

    arrivals: WebhookArrivals = field(default_factory=WebhookArrivals)
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    catalog_loaded_at: float = field(default_factory=time.time)


_STATE = web.AppKey("clinicflow_ops", OpsState)


def arrivals(app: web.Application) -> WebhookArrivals:
    """The app's webhook arrivals."""
    return app[_STATE].arrivals


def catalog_loaded_at(app: web.Application) -> float:
    """When the catalog was last (re)loaded, Unix time."""
    return app[_STATE].catalog_loaded_at


@web.middleware
async def track_webhooks(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Note each webhook's arrival and answer, whatever the handler decided."""
    if request.path != request.app[BASE] + WEBHOOK_PATH:
        return await handler(request)
    return await tracked(request.app, handler(request))


async def tracked(
    app: web.Application, answer: Awaitable[web.StreamResponse]
) -> web.StreamResponse:
    """``answer`` (a webhook handler's), with its arrival noted in ``app``'s arrivals (also
    for webhooks routed to one clinic of several from the shared path)."""
    seen = app[_STATE].arrivals
    status = 500
    try:
        response = await answer
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        seen.last_at, seen.last_status = time.time(), status
        seen.count += 1


# -- reload ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReloadResult:
    """What a reload did: ``ok``, the catalog digest and scripts, or the lint lines."""

    ok: bool
    digest: str = ""
    scripts: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "digest": self.digest, "scripts": list(self.scripts)}
        return {"ok": False, "problems": list(self.problems)}


async def reload_catalog(app: web.Application) -> ReloadResult:
    """Load the catalog again (see the module docstring); never raises for a bad catalog."""
    engine, runtime, state = app[ENGINE], app[RUNTIME], app[_STATE]
    async with state.reload_lock:
        try:
            catalog = await engine.reload(app[CONFIG].catalog)
        except ScriptError as exc:
            lines = tuple(str(problem) for problem in exc.problems) or (str(exc),)
            runtime.metrics.inc("reloads", outcome="refused")
            log_event("reload_refused", 30, errors=len(lines), first=lines[0])
            return ReloadResult(False, problems=lines)
    from clinicflow.runner.workspace import staff_ids  # clinic.yaml's phones and the accounts'

    runtime.staff = staff_ids(app)
    runtime.metrics.inc("reloads", outcome="ok")
    state.catalog_loaded_at = time.time()
    log_event("reloaded", digest=catalog.digest[:12], scripts=len(catalog.scripts))
    return ReloadResult(True, catalog.digest, tuple(sorted(s.id for s in catalog.scripts)))


async def admin_reload(request: web.Request) -> web.Response:
    """``POST /admin/reload``: 200 with the new digest, or 422 with the lint lines."""
    from clinicflow.runner.staff_api import _check  # the staff token guards the admin endpoint too

    _check(request)
    result = await reload_catalog(request.app)
    return web.json_response(result.as_dict(), status=200 if result.ok else 422)


def add_routes(app: web.Application) -> None:
    """The admin route, the webhook tracker and its state."""
    app.router.add_post("/admin/reload", admin_reload)
    app.middlewares.append(track_webhooks)
    app[_STATE] = OpsState()


def install_sighup(
    app: web.Application, clinic_apps: Sequence[web.Application] | None = None
) -> None:
    """Reload the catalog on SIGHUP while the app runs (``clinicflow serve``); with
    ``clinic_apps`` (one runner of several clinics), every clinic that is up reloads its own."""
    targets = list(clinic_apps) if clinic_apps is not None else [app]

    async def on_startup(app: web.Application) -> None:
        loop = asyncio.get_running_loop()

        async def reload(target: web.Application) -> None:
            await reload_catalog(target)

        def hangup() -> None:
            log_event("sighup")
            for target in targets:
                if target[STANDING].down is None:
                    task = loop.create_task(reload(target), name="reload")
                    target[RUNTIME].tasks.append(task)

        loop.add_signal_handler(signal.SIGHUP, hangup)

    async def on_cleanup(app: web.Application) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)


# -- retention ------------------------------------------------------------------------------


async def retention_loop(app: web.Application, clock: Clock) -> None:
    """Once a day (first right away): redact texts older than ``privacy.retention_days``."""
    from clinicflow.privacy import redact_expired

    while True:
        engine = app[ENGINE]
        privacy = engine.catalog.clinic.privacy
        days = privacy.retention_days if privacy is not None else None
        if days:
            try:
                count = await asyncio.to_thread(
                    redact_expired, engine.data_dir, days, now=clock.now(),
                    database_url=engine.store.target.url,
                )  # fmt: skip
            except Exception as exc:  # retried tomorrow; the runner keeps serving
                log_event("retention_failed", 40, error=repr(exc))
            else:
                app[RUNTIME].metrics.inc("texts_redacted", count)
                log_event("retention", days=days, redacted=count)
        await asyncio.sleep(RETENTION_EVERY_S)
