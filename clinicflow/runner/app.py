"""The aiohttp application: WAHA webhooks in, the outbox out, health, metrics, staff API.

:func:`create_app` builds it; every resource (engine, database connection, WAHA client,
background tasks) is opened and closed in ``cleanup_ctx``::

    POST /webhooks/waha      verify → parse → who is it → store in the inbox → 200 (processing
                             comes after)
    GET  /health             process, database, WAHA session status
    GET  /metrics            Prometheus text (clinicflow.runner.metrics)
    POST /admin/reload       reload the catalog (staff token; also on SIGHUP; clinicflow.runner.ops)
    /staff/...               see clinicflow.runner.staff_api
    /login, /inbox/...       the secretaries' workspace (clinicflow.runner.workspace)

Background tasks: the per-chat processors and senders, a WAHA session-status poller, a
sweep that restarts anything pending, the idle hand-back of chats left in ``human``, and the
daily retention job (LGPD). While serving, the data directory is locked against a restore.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from clinicflow.clock import Clock, SystemClock, iso
from clinicflow.dashboard import add_dashboard_routes
from clinicflow.database import DB_ERRORS, ChatOwnership, is_postgres, unreachable
from clinicflow.datadir import WriterLock
from clinicflow.engine import Engine, TurnResult
from clinicflow.errors import WebhookError
from clinicflow.history import llm_call_row
from clinicflow.identity import Identities, Resolver, StaffIds
from clinicflow.inbox import Inbox
from clinicflow.outbox import Backoff, Outbox, OutMessage, Sender
from clinicflow.pseudonyms import Pseudonyms, shape
from clinicflow.runner import ops, staff_api
from clinicflow.runner.auth import admin_access
from clinicflow.runner.config import ConfigError, RunnerConfig
from clinicflow.runner.keys import BASE, CONFIG, ENGINE, RUNTIME, STANDING, WAHA, Runtime, Standing
from clinicflow.runner.metrics import CLINIC, Metrics, log_event
from clinicflow.runner.processor import Processor, Transcriber
from clinicflow.runner.staff_commands import is_command
from clinicflow.runner.workspace import add_workspace_routes
from clinicflow.spool import Spool
from clinicflow.storage import connect
from clinicflow.waha import WahaClient
from clinicflow.webhooks import Ignored, Inbound, SessionStatus, is_patient_chat, parse_webhook
from clinicflow.webhooks import verify_hmac as _verify
from clinicflow.workers import EnginePool, EngineSpec, LocalEngine, Turns

SWEEP_S = 5.0
LOOP_BUSY_MS = 250  # longest wait of the event loop's connection for the write lock
SPOOL_CHECK_S = 0.5  # how often a locked database is checked again
LOCKED_UNHEALTHY_S = 1.0  # a database locked this long makes /health say so (503)


def create_app(
    config: RunnerConfig,
    *,
    engine: Engine | None = None,
    waha: WahaClient | None = None,
    clock: Clock | None = None,
    transcriber: Transcriber | None = None,
    base: str = "",
    isolated: bool = False,
) -> web.Application:
    """Build the runner application.

    Args:
        config: settings (see :class:`clinicflow.runner.config.RunnerConfig`).
        engine: an engine to use (and leave open); None builds one from ``config``.
        waha: a WAHA client to use (and leave open); None opens one on ``config.waha_url``.
        clock: the clinic's time source for everything the runner decides by the hour: the
            engine it builds (hours, follow-ups), the hand-off notices held until the opening,
            the idle hand-back and the dashboard. Default: the given engine's clock, else the
            system clock. Network timing (retry backoff, burst merging) stays on real time.
        transcriber: ``(audio, mimetype) -> text`` for voice notes; None transcribes them
            with the engine's Gemini when it has one (a key is configured), else acknowledges
            them like any other media.
        base: the path this app is mounted under as one clinic of several (``/c/<clinic>``,
            see :mod:`clinicflow.runner.clinics`); "" when it is the whole runner.
        isolated: a failed start (a broken catalog, its data dir in use) leaves this app down
            instead of raising: its routes answer 503 and its webhooks wait in its spool
            (``STANDING``), so the other clinics of one runner keep serving.
    """
    app = web.Application(client_max_size=config.max_body)
    app[CONFIG] = config
    app[BASE] = base
    app[STANDING] = Standing()
    clock = clock or (engine.clock if engine is not None else SystemClock())
    app.cleanup_ctx.append(_resources(engine, waha, clock, transcriber))
    app.router.add_post("/webhooks/waha", webhook)
    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics)
    staff_api.add_routes(app)
    ops.add_routes(app)
    add_workspace_routes(app, clock=clock)
    add_dashboard_routes(
        app,
        get_store=lambda: app[ENGINE].store,
        get_catalog=lambda: app[ENGINE].catalog,
        staff_token=config.staff_token,
        clock=clock,
        authorize=admin_access,
    )
    if isolated:  # every context (the runtime, then what the routes built on it) or none
        contexts = list(app.cleanup_ctx)
        del app.cleanup_ctx[:]
        app.cleanup_ctx.append(_isolated(contexts))
        app.middlewares.insert(0, _while_down)
    return app


def _resources(
    given_engine: Engine | None,
    given_waha: WahaClient | None,
    clock: Clock,
    transcriber: Transcriber | None,
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def resources(app: web.Application) -> AsyncIterator[None]:
        config = app[CONFIG]
        # One writer per data dir: refused before anything is opened or built.
        lock = WriterLock(given_engine.data_dir if given_engine else config.data_dir)
        lock.acquire()
        llm = None
        local = given_engine  # an engine in this process (given, or CLINICFLOW_WORKERS=0)
        pool: EnginePool | None = None
        try:
            if local is None:
                from clinicflow.llm import llm_from_config

                llm = llm_from_config(config.llm)
                if config.workers == 0:
                    local = await asyncio.to_thread(
                        Engine.from_catalog, config.catalog, data_dir=config.data_dir, llm=llm,
                        clock=clock, database_url=config.database_url,
                    )  # fmt: skip
                else:
                    pool = await _start_pool(config, clock, llm)
        except BaseException:
            lock.release()
            raise
        engine: Turns = pool if pool is not None else LocalEngine(_present(local))
        waha = given_waha or WahaClient(
            config.waha_url, config.waha_api_key, config.waha_session, timeout_s=15
        )
        await waha.start()
        conn = connect(engine.store.target)
        # Several runners on one PostgreSQL: a chat is worked on by the runner that owns it.
        owner = ChatOwnership(engine.store.target)
        # The event loop never waits long for SQLite: a write that finds the database locked
        # for this long fails, and the webhook goes to the spool instead (see _drain_spool).
        conn.execute(f"PRAGMA busy_timeout={LOOP_BUSY_MS}")
        metrics = Metrics()
        seen = ops.arrivals(app)
        metrics.gauges["clinicflow_last_webhook_timestamp_seconds"] = lambda: seen.last_at or 0.0
        metrics.gauges["clinicflow_catalog_loaded_timestamp_seconds"] = lambda: (
            ops.catalog_loaded_at(app)
        )
        outbox = Outbox(conn, clock)
        sender = Sender(
            outbox,
            waha,
            typing_delay_max=config.typing_delay_max,
            backoff=Backoff(config.send_retry_base, config.send_retry_max),
            on_event=lambda name, fields: _sender_event(metrics, name, fields),
            probe=lambda: _waha_working(waha),
            probe_every=min(1.0, config.status_poll),
            owner=owner,
            on_waha=lambda up: _set_status(app[RUNTIME], "WORKING" if up else "unreachable"),
        )
        identities = Identities(conn)
        inbox = Inbox(conn, identities)
        alias = Pseudonyms.from_data_dir(config.data_dir, config.log_key)
        transcribe = transcriber or _gemini_transcriber(engine, metrics)
        processor = Processor(
            engine, inbox, outbox, sender, waha, metrics,
            burst_quiet=config.burst_quiet, transcriber=transcribe, clock=clock, alias=alias,
            owner=owner,
        )  # fmt: skip
        metrics.gauges["clinicflow_outbox_depth"] = outbox.depth
        metrics.gauges["clinicflow_inbox_pending"] = lambda: float(inbox.pending_count())
        # Network time (the lid cache's age), not the clinic's clock.
        resolver = Resolver(identities, waha.lid_phone, time.time)
        runtime = Runtime(
            conn, inbox, outbox, sender, processor, metrics,
            StaffIds(s.phone for s in engine.catalog.clinic.staff), resolver, alias,
        )  # fmt: skip
        runtime.spool = Spool(engine.data_dir / "inbox.spool")
        app[ENGINE], app[WAHA], app[RUNTIME] = engine, waha, runtime
        loop = asyncio.get_running_loop()

        def send_follow_up(result: TurnResult) -> None:
            # Called from the scheduler's thread: hand over to the loop that owns the outbox.
            loop.call_soon_threadsafe(_queue_follow_up, runtime, result)

        if pool is not None:  # jobs kept here, fired in the chat's worker while we own the chat
            pool.enable_follow_ups(
                lambda result: _queue_follow_up(runtime, result), owner=owner, alias=alias
            )
        else:
            _present(local).enable_follow_ups(send_follow_up)
        inbox.prune_envelopes()
        recovered = processor.recover()
        sender.kick_all()
        log_event("started", recovered_chats=recovered, outbox_depth=outbox.depth())
        runtime.tasks += [
            asyncio.create_task(_poll_status(app), name="waha-status"),
            asyncio.create_task(_sweep(runtime), name="sweep"),
            asyncio.create_task(_drain_spool(runtime, config), name="spool"),
        ]
        if config.human_idle > 0:
            idle = _idle_handback(runtime, engine, config.human_idle, clock)
            runtime.tasks.append(asyncio.create_task(idle, name="idle-handback"))
        retention = ops.retention_loop(app, clock)
        runtime.tasks.append(asyncio.create_task(retention, name="retention"))
        try:
            yield
        finally:
            for task in runtime.tasks:
                task.cancel()
            await asyncio.gather(*runtime.tasks, return_exceptions=True)
            if local is not None and local.follow_ups is not None:
                await asyncio.to_thread(local.follow_ups.close)  # lets a firing one finish
                local.follow_ups = None
            await processor.close()
            await sender.close()
            await engine.close()
            conn.close()
            if given_waha is None:
                await waha.close()
            if pool is not None:
                pool.store.close()
            elif given_engine is None:
                _present(local).close_resources()
            owner.close()
            lock.release()
            if llm is not None and hasattr(llm, "aclose"):
                await llm.aclose()
            log_event("stopped")

    return resources


def _isolated(contexts: list[Any]) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's cleanup contexts as one, whose failure to start leaves the app down (see
    ``create_app``): the contexts already entered are closed again, in reverse. Each is a
    cleanup context, ``(app) -> async iterator yielding once``."""

    async def guarded(app: web.Application) -> AsyncIterator[None]:
        config, standing = app[CONFIG], app[STANDING]
        # Its start, and the tasks created meanwhile (copies of this context), log its id;
        # set again for its stop (which may run in another task).
        token = CLINIC.set(_clinic_id(app))
        async with contextlib.AsyncExitStack() as entered:
            try:
                for context in contexts:
                    await entered.enter_async_context(contextlib.asynccontextmanager(context)(app))
            except Exception as exc:  # one clinic's failure must not stop the others
                await entered.aclose()
                standing.down = f"{type(exc).__name__}: {exc}"
                standing.spool = Spool(config.data_dir / "inbox.spool")
                log_event("clinic_down", 40, session=config.waha_session, error=standing.down)
            with contextlib.suppress(ValueError):  # a context other than the start's
                CLINIC.reset(token)
            yield
            CLINIC.set(_clinic_id(app))

    return guarded


def _clinic_id(app: web.Application) -> str:
    """The id of the clinic an app serves under ``/c/<id>`` ("" for a single runner)."""
    return app[BASE].rsplit("/", 1)[-1]


@web.middleware
async def _while_down(request: web.Request, handler: ops.Handler) -> web.StreamResponse:
    down = request.app[STANDING].down
    if down is None:
        return await handler(request)
    if request.path == request.app[BASE] + ops.WEBHOOK_PATH and request.method == "POST":
        return await handle_webhook(request.app, request)  # kept in the spool
    return _answer(503, error=request.app[STANDING].public)


def _present(engine: Engine | None) -> Engine:
    assert engine is not None
    return engine


async def _start_pool(config: RunnerConfig, clock: Clock, llm: Any) -> EnginePool:
    """Open the history here (migrating the schema first), then start the engine workers."""
    from clinicflow.loader import load_catalog
    from clinicflow.storage import Store

    store = await asyncio.to_thread(Store, config.data_dir, config.database_url)
    try:
        catalog = await asyncio.to_thread(load_catalog, config.catalog)
        spec = EngineSpec(config.data_dir, config.catalog, config.llm, config.database_url)
        pool = EnginePool(spec, catalog, store, clock=clock, workers=config.workers,
                          stuck_after=config.stuck_after)  # fmt: skip
        pool.llm = llm  # voice notes are transcribed here, before their turn
        await pool.start()
    except BaseException:
        store.close()
        raise
    return pool


def _gemini_transcriber(engine: Turns, metrics: Metrics) -> Transcriber | None:
    """Voice notes through the engine's Gemini, if it has one; each call is recorded in the
    ``understanding`` table (purpose ``transcribe``, no chat: the transcriber is not told)."""
    from clinicflow.llm import GeminiLLM

    llm = engine.llm
    if not isinstance(llm, GeminiLLM):
        return None

    async def transcribe(audio: bytes, mimetype: str) -> str | None:
        text, call = await llm.atranscribe(audio, mimetype)
        metrics.inc("llm_calls")
        log_event("transcription", outcome=call.outcome, ms=call.ms, heard=text is not None)
        row = llm_call_row("", call, iso(engine.clock.now()))
        try:
            await asyncio.to_thread(engine.store.write, [row])
        except Exception as exc:  # the record is not worth losing the transcript over
            log_event("transcription_not_recorded", 30, error=repr(exc))
        return text

    return transcribe


def _queue_follow_up(runtime: Runtime, result: TurnResult) -> None:
    """Put a follow-up in the outbox once (its batch id is unique to that follow-up)."""
    batch = str(result.extra.get("batch_id") or "")
    if not batch or runtime.outbox.has_batch(batch):
        return
    to = runtime.inbox.identities.reply_to(result.chat_id)
    messages = [OutMessage(to, text, "follow_up", batch) for text in result.replies]
    runtime.processor.commit((), messages)
    log_event("follow_up", chat=runtime.alias(result.chat_id))


def _sender_event(metrics: Metrics, name: str, fields: dict[str, object]) -> None:
    if name == "sent":
        metrics.inc("messages_out")
    elif name in ("retry", "failed"):
        metrics.inc("send_failures", outcome=name)
        log_event("send_" + name, 30, **fields)


# -- routes --------------------------------------------------------------------------------


async def webhook(request: web.Request) -> web.Response:
    """``POST /webhooks/waha``: store the message durably, then acknowledge."""
    return await handle_webhook(request.app, request)


async def handle_webhook(app: web.Application, request: web.Request) -> web.Response:
    """Take one webhook for ``app`` (this runner, or one clinic of several).

    The body is checked (size, ``X-Webhook-Hmac``, not from a browser), parsed and stored in
    the inbox before the 200. A clinic that is down (:class:`~clinicflow.runner.keys.Standing`)
    keeps checked webhooks in its spool (200 ``spooled``); its other routes answer 503.
    """
    # One clinic of several: its lines, and those of the chat's tasks started here, say which.
    token = CLINIC.set(_clinic_id(app)) if app[BASE] else None
    try:
        return await _take_webhook(app, request)
    finally:
        if token is not None:
            CLINIC.reset(token)


async def _take_webhook(app: web.Application, request: web.Request) -> web.Response:
    config, standing = app[CONFIG], app[STANDING]
    count = app[RUNTIME].metrics.inc if standing.down is None else _not_counted
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        count("webhooks", outcome="too_large")
        return _answer(413, error=f"body larger than {config.max_body} bytes")
    if config.waha_hmac_key:
        if not _verify(raw, config.waha_hmac_key, request.headers.get("X-Webhook-Hmac")):
            count("webhooks", outcome="bad_signature")
            log_event("webhook_bad_signature", 30)
            return _answer(401, error="missing or invalid X-Webhook-Hmac")
    elif refusal := _from_a_browser(request):
        # Unsigned webhooks: a page on another site could post to us from a browser with a
        # "simple" request (no CORS preflight). WAHA never sends an Origin or a form body.
        count("webhooks", outcome="browser")
        return _answer(403, error=refusal)
    if standing.spool is not None:  # down: kept for when the clinic starts again
        standing.spool.append(raw)
        return _answer(200, status="spooled")
    runtime = app[RUNTIME]
    try:
        parsed = parse_webhook(raw, max_bytes=config.max_body)
    except WebhookError as exc:
        runtime.metrics.inc("webhooks", outcome="rejected")
        log_event("webhook_rejected", 30, status=exc.status, reason=str(exc))
        return _answer(exc.status or 400, error=str(exc))
    if isinstance(parsed, Ignored):
        if parsed.bad_id is not None:
            _log_bad_id(runtime, parsed.bad_id)
            runtime.metrics.inc("webhooks", outcome="bad_chat_id")
            return _answer(200, status="ignored", reason=parsed.reason)
        runtime.metrics.inc("webhooks", outcome="ignored")
        return _answer(200, status="ignored", reason=parsed.reason)
    if isinstance(parsed, SessionStatus):
        runtime.metrics.inc("webhooks", outcome="session_status")
        if parsed.session == config.waha_session:
            _set_status(runtime, parsed.status)
        return _answer(200, status="ok")
    if runtime.db_locked_since is not None:
        return _spooled(runtime, raw)
    try:
        return await _inbound(runtime, config, parsed)
    except DB_ERRORS as exc:
        if not unreachable(exc):
            raise
        # SQLite's write lock held by another process, or PostgreSQL out of reach: the
        # webhook waits in the spool (acknowledged: WAHA's retries would run out first).
        runtime.db_locked_since = time.monotonic()
        log_event("database_unavailable", 30, error=type(exc).__name__, detail=str(exc)[:200])
        return _spooled(runtime, raw)


def _not_counted(name: str, amount: float = 1.0, **labels: str) -> None:
    """Metrics of a clinic that is down (it has none)."""


def _spooled(runtime: Runtime, raw: bytes) -> web.Response:
    """Acknowledge a webhook the database cannot take now: it waits in the spool."""
    assert runtime.spool is not None
    runtime.spool.append(raw)
    runtime.metrics.inc("webhooks", outcome="spooled")
    return _answer(200, status="spooled")


def _from_a_browser(request: web.Request) -> str | None:
    """Why an unsigned request looks like a browser's (None when it does not).

    A page on another site can make a browser POST here without a CORS preflight (a
    ``text/plain`` or form body); such a request always carries ``Origin`` (or ``Referer`` /
    ``Sec-Fetch-*``), which WAHA never sends.
    """
    headers = request.headers
    if "Origin" in headers or "Referer" in headers or "Sec-Fetch-Site" in headers:
        return "requests from a browser are refused (set WAHA_HMAC_KEY)"
    return None


def _log_bad_id(runtime: Runtime, bad_id: str) -> None:
    """A malformed chat id is logged once (pseudonym and shape), however often WAHA retries."""
    if bad_id in runtime.bad_ids_logged:
        return
    if len(runtime.bad_ids_logged) > 1000:
        runtime.bad_ids_logged.clear()
    runtime.bad_ids_logged.add(bad_id)
    # A near-valid id ("+55...@c.us", "55...:12@c.us", no "@c.us") is still her number:
    # its pseudonym and its shape, never the id itself.
    log_event("webhook_bad_chat_id", 30, id=runtime.alias(bad_id), shape=shape(bad_id, 80),
              length=len(bad_id))  # fmt: skip


async def _inbound(runtime: Runtime, config: RunnerConfig, msg: Inbound) -> web.Response:
    metrics = runtime.metrics
    if msg.session != config.waha_session:
        metrics.inc("webhooks", outcome="other_session")
        return _answer(200, status="ignored", reason="another session")
    if not is_patient_chat(msg.chat_id):
        metrics.inc("webhooks", outcome="not_patient_chat")
        return _answer(200, status="ignored", reason="not a one-to-one chat")
    if msg.from_me and msg.is_system:
        metrics.inc("webhooks", outcome="own_event")
        return _answer(200, status="ignored", reason="an event of our own")
    person = await runtime.resolver.resolve(msg.chat_id, msg.alt_chat_id)
    kind: str | None = None
    if msg.from_me:
        ids = [*runtime.inbox.identities.ids_of(person.identity), *person.ids]
        if runtime.outbox.is_own(ids, msg.message_id, msg.text, wa_key=msg.wa_key):
            metrics.inc("webhooks", outcome="own_echo")
            return _answer(200, status="ignored", reason="our own message")
        kind = "takeover"  # a person: the clinic's phone, or another tool on the API
    elif runtime.staff.matches(person):
        if msg.is_system:
            metrics.inc("webhooks", outcome="staff_event")
            return _answer(200, status="ignored", reason="a staff member's event")
        kind = "staff_command" if is_command(msg.text) else "staff_note"
    if not runtime.inbox.add(msg, kind=kind, person=person):
        metrics.inc("duplicates_dropped")
        return _answer(200, status="duplicate")
    metrics.inc("webhooks", outcome="stored")
    patient_message = kind is None and not msg.is_system
    if patient_message:
        metrics.inc("messages_in")
    log_event("inbound", chat=runtime.alias(person.identity), kind=kind or msg.kind,
              event=msg.event)  # fmt: skip
    runtime.processor.kick(person.identity, fresh=patient_message)
    return _answer(200, status="stored")


async def health(request: web.Request) -> web.Response:
    """``GET /health``: 200 while the process, the database and every engine worker work
    (503 with the reason otherwise: a worker down, or stuck on a turn); WAHA reported."""
    body, ok = health_of(request.app)
    return web.json_response(body, status=200 if ok else 503)


def health_of(app: web.Application) -> tuple[dict[str, Any], bool]:
    """The body of ``GET /health`` for ``app`` (a started runner, or one clinic of several)
    and whether it is healthy."""
    runtime = app[RUNTIME]
    try:
        runtime.conn.execute("SELECT 1").fetchone()
        database = "ok"
    except Exception as exc:  # reported, not raised
        database = f"error: {exc}"
    locked = runtime.db_locked_since
    if locked is not None and time.monotonic() - locked >= LOCKED_UNHEALTHY_S:
        database = (
            f"locked: no write for {time.monotonic() - locked:.1f} s (another process holds "
            "the write lock); webhooks are acknowledged into the spool"
        )
    engines = app[ENGINE].health()
    ok = database == "ok" and engines["status"] == "ok"
    spooled = len(runtime.spool) if runtime.spool is not None else 0
    depth: int | None
    pending: int | None
    try:
        depth, pending = runtime.outbox.depth(), runtime.inbox.pending_count()
    except DB_ERRORS:  # the database is away: said above, not raised
        depth = pending = None
    body = {
        "status": "ok" if ok else "error",
        "process": "ok",
        "database": database,
        "engines": engines,
        "waha": {
            "session": app[CONFIG].waha_session,
            "status": runtime.waha_status,
            "working": runtime.waha_status == "WORKING",
        },
        "outbox_depth": depth,
        "inbox_pending": pending,
        "spooled": spooled,
        "webhooks": ops.arrivals(app).as_dict(),
    }
    return body, ok


async def metrics(request: web.Request) -> web.Response:
    """``GET /metrics``: Prometheus text format."""
    metrics = request.app[RUNTIME].metrics
    body = metrics.render().encode()
    return web.Response(body=body, headers={"Content-Type": metrics.content_type})


def _answer(code: int, /, **body: Any) -> web.Response:
    return web.Response(status=code, text=json.dumps(body), content_type="application/json")


# -- background tasks ---------------------------------------------------------------------


def _set_status(runtime: Runtime, status: str, *, polled: bool = False) -> None:
    """WAHA's state as last observed, by whoever observed it: the poller, a
    ``session.status`` webhook, or a send (WAHA took it: WORKING; connection refused or a
    5xx: unreachable), so /health follows an outage and a return at once.

    Pending rows are woken when WAHA turns WORKING; for the poller, only when its own
    observation changed (a WAHA that answers polls while failing sends keeps its back-off).
    """
    was, runtime.waha_status = runtime.waha_status, status
    if status != was:
        log_event("waha_status", status=status, previous=was)
    if polled:
        polled_before, runtime.waha_polled = runtime.waha_polled, status
        wake = status == "WORKING" and polled_before != "WORKING"
    else:
        wake = status == "WORKING" and was != "WORKING"
    if wake:
        runtime.sender.wake_all()


async def _waha_working(waha: WahaClient) -> bool:
    return await waha.session_status() == "WORKING"


async def _poll_status(app: web.Application) -> None:
    waha, runtime = app[WAHA], app[RUNTIME]
    while True:
        status = await waha.session_status()
        _set_status(runtime, status or "unreachable", polled=True)
        await asyncio.sleep(app[CONFIG].status_poll)


async def _sweep(runtime: Runtime) -> None:
    """Restart anything pending that no task is looking after (belt and braces)."""
    while True:
        await asyncio.sleep(SWEEP_S)
        if runtime.db_locked_since is not None:
            continue  # the spool's drain restarts everything once the lock is gone
        try:
            runtime.processor.recover()
            runtime.sender.kick_all()
        except DB_ERRORS as exc:  # the database is away: the next sweep tries again
            log_event("sweep_failed", 30, error=type(exc).__name__)


def _writable(path: Path) -> bool:
    """Whether the database's write lock is free right now (never waits)."""
    probe = sqlite3.connect(str(path), timeout=0)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


async def _drain_spool(runtime: Runtime, config: RunnerConfig) -> None:
    """Replay the spool into the inbox once the database can be written (and at start)."""
    spool = runtime.spool
    assert spool is not None
    conn = runtime.inbox.identities.conn
    # PostgreSQL has no database-wide write lock: the spool only replays what is left.
    path = None if is_postgres(conn) else conn.execute("PRAGMA database_list").fetchone()[2]
    while True:
        waiting = runtime.db_locked_since is not None or len(spool) > 0
        if waiting and (path is None or await asyncio.to_thread(_writable, Path(path))):
            await _replay(runtime, config, spool)
        await asyncio.sleep(SPOOL_CHECK_S)


async def _replay(runtime: Runtime, config: RunnerConfig, spool: Spool) -> None:
    done = 0
    for raw in spool.peek():
        try:
            parsed = parse_webhook(raw, max_bytes=config.max_body)
            if isinstance(parsed, Inbound):
                await _inbound(runtime, config, parsed)
        except DB_ERRORS as exc:
            if unreachable(exc):
                break  # locked or out of reach again: the rest waits for the next check
            raise
        except WebhookError:
            pass  # it was parsed once already; a body that no longer parses is dropped
        done += 1
    spool.drop(done)
    if not len(spool):
        if runtime.db_locked_since is not None:
            log_event("database_unlocked", replayed=done,
                      locked_s=round(time.monotonic() - runtime.db_locked_since, 1))  # fmt: skip
        runtime.db_locked_since = None
        runtime.processor.recover()
        runtime.sender.kick_all()


async def _idle_handback(runtime: Runtime, engine: Turns, idle_s: float, clock: Clock) -> None:
    """Chats left in ``human`` longer than ``idle_s`` since the last phone message go back."""
    conn = runtime.conn
    while True:
        await asyncio.sleep(min(60.0, max(0.5, idle_s / 4)))
        now = clock.now().timestamp()
        rows = await asyncio.to_thread(
            engine.store.query, "SELECT chat_id FROM conversations WHERE status = 'human'"
        )
        for row in rows:
            chat = row["chat_id"]
            seen = conn.execute("SELECT at FROM human_activity WHERE chat_id = ?", (chat,))
            found = seen.fetchone()
            if found is None:  # first sight (e.g. after a restart): start the timer now
                runtime.processor.record_human(chat)
                continue
            if now - float(found[0]) < idle_s:
                continue
            out = await runtime.processor.staff.act("handback", chat)
            if out is not None:
                runtime.processor.commit((), out)
                log_event("idle_handback", chat=runtime.alias(chat))


def _check_port(host: str, port: int) -> None:
    """Refuse at once, in one line, an address already in use (another runner, another
    service), instead of starting every engine and failing after.

    Raises:
        ConfigError: the address cannot be listened on.
    """
    try:
        socket.create_server((host or "0.0.0.0", port)).close()
    except OSError as exc:
        raise ConfigError(
            f"não dá para escutar em {host}:{port}: {exc.strerror or exc} (outro serviço ou "
            "outro clinicflow já usa essa porta? CLINICFLOW_PORT / --port)"
        ) from None


def run(config: RunnerConfig, *, print_fn: Callable[..., None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM (``clinicflow serve``, ``python -m clinicflow.runner``).

    Raises:
        ConfigError: unsigned webhooks on a non-loopback address without ``insecure``; the
            address already in use.
    """
    from clinicflow.runner.logs import configure_logging

    warning = config.check_exposure()
    _check_port(config.host, config.port)  # before any clinic starts (and runs its recovery)
    configure_logging(config.log_format)
    if warning:
        bar = "!" * 78
        logging.getLogger("clinicflow.runner").warning("\n%s\n%s\n%s", bar, warning, bar)
        print(f"WARNING: {warning}", file=sys.stderr)
    # Turns run in a worker thread and hold the GIL in long stretches; a shorter switch
    # interval lets the event loop acknowledge webhooks in between (ack latency).
    sys.setswitchinterval(0.001)
    if config.clinics is not None:
        from clinicflow.clinics import load_clinics
        from clinicflow.runner.clinics import CLINIC_APPS, create_clinics_app

        app = create_clinics_app(config, load_clinics(config.clinics))
        ops.install_sighup(app, list(app[CLINIC_APPS].values()))
    else:
        app = create_app(config)
        ops.install_sighup(app)  # reload edited scripts: kill -HUP <pid>
    web.run_app(app, host=config.host, port=config.port, print=print_fn, access_log=None)


__all__ = ["create_app", "run"]
