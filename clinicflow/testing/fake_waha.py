"""A fake WAHA on 127.0.0.1 that speaks the real wire protocol, for tests and benchmarks.

It serves the endpoints clinicflow calls (send text, seen, typing, session info and config
update, files, health, the lid → phone map) with WAHA's status codes and error shapes, records
every request, can go down, fail or answer late on command, and posts signed webhooks the way
WAHA does, retries included. A ``sendText`` with a pre-generated ``id`` it has already accepted
is the same message (recorded in ``repeated_ids``, not sent again)::

    async with FakeWaha(api_key="k") as waha:
        client = WahaClient(waha.url, "k")
        await waha.emit(hook_url, payload=waha.text_message("5511988887777@c.us", "oi"))
"""

from __future__ import annotations

import asyncio
import hmac
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from clinicflow.testing import waha_messages as wm
from clinicflow.testing import waha_responses as wr
from clinicflow.testing import waha_webhooks as wh

_BODY = web.RequestKey("clinicflow_fake_waha_body", object)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_REQUIRED = {
    "/api/sendText": ("session", "chatId", "text"),
    "/api/sendSeen": ("session", "chatId"),
    "/api/startTyping": ("session", "chatId"),
    "/api/stopTyping": ("session", "chatId"),
}


@dataclass
class WahaCall:
    """One request the fake received; ``status`` is what it answered."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    headers: dict[str, str]
    time: float
    status: int = 0


@dataclass
class _Failure:
    remaining: int
    status: int
    path: str | None = None


class FakeWaha(wm.MessageBuilder):
    """An in-process WAHA server (see the module docstring).

    The payload builders (``text_message``, ``voice_message``...) come from
    :class:`~clinicflow.testing.waha_messages.MessageBuilder`; media they create is served here.

    Args:
        api_key: required as ``X-Api-Key`` (or ``?x-api-key=``) when set.
        session: the one session that exists, status ``WORKING``.
        engine: default flavour of built payloads and of the ``sendText`` answer.
        hmac_key: default key for signing emitted webhooks.
        not_working_wait_s: how long send calls wait for WORKING before 422 (WAHA: 5 s).
        me_id: our own number.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        session: str = "default",
        engine: str = "NOWEB",
        hmac_key: str | None = None,
        not_working_wait_s: float = 0.0,
        me_id: str = wm.DEFAULT_ME,
        version: str = wh.DEFAULT_VERSION,
    ) -> None:
        super().__init__(engine=engine, me_id=me_id)
        self.api_key = api_key
        self.session = session
        self.hmac_key = hmac_key
        self.not_working_wait_s = not_working_wait_s
        self.version = version
        self.sessions: dict[str, str] = {session: "WORKING"}
        self.session_configs: dict[str, dict[str, Any]] = {session: {"webhooks": []}}
        self.send_text_shape: str = engine  # "NOWEB" | "WEBJS" | "GOWS" | "empty"
        self.files: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.lids: dict[str, str | None] = {}  # "<n>@lid" -> "<phone>@c.us" (None: hidden)
        self.sent: list[dict[str, Any]] = []
        self.sent_ids: list[str] = []
        self.repeated_ids: list[str] = []  # sendText ids received again (not sent twice)
        self.answer_delay_s = 0.0  # seconds sendText takes to answer after accepting
        self._by_client_id: dict[str, dict[str, Any]] = {}
        self.calls: list[WahaCall] = []
        self.emitted: list[wh.WebhookRequest] = []
        self.port = 0
        self._failures: list[_Failure] = []
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL to give to :class:`~clinicflow.waha.WahaClient`."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Listen on a random free port of 127.0.0.1."""
        if self._client is None:
            self._client = aiohttp.ClientSession()
        await self.up()

    async def stop(self) -> None:
        """Stop serving and close the webhook client."""
        await self.down()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def __aenter__(self) -> FakeWaha:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def down(self) -> None:
        """Stop listening and drop open connections: new requests are refused."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def up(self) -> None:
        """Listen again, on the same port once one was chosen."""
        if self._runner is not None:
            return
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/api/{action:sendText|sendSeen|startTyping|stopTyping}", self._send)
        app.router.add_get("/api/sessions/{session}", self._session_info)
        app.router.add_put("/api/sessions/{session}", self._session_update)
        app.router.add_get("/api/files/{session}/{file}", self._file)
        app.router.add_get("/api/{session}/lids/pn/{phone}", self._lid_by_phone)
        app.router.add_get("/api/{session}/lids/{lid}", self._lid)
        for path in ("/health", "/ping", "/api/server/version"):
            app.router.add_get(path, self._server_info)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = runner.addresses[0][1]
        self._runner = runner

    # -- controls ----------------------------------------------------------------------------

    def set_status(self, status: str, session: str | None = None) -> None:
        """Set a session's status (``WORKING``, ``SCAN_QR_CODE``, ``STOPPED``, ``FAILED``...)."""
        self.sessions[session or self.session] = status

    def fail_next(self, n: int = 1, status: int = 500, path: str | None = None) -> None:
        """Answer the next ``n`` requests (to ``path`` only, if given) with ``status``."""
        if n > 0:
            self._failures.append(_Failure(n, status, path))

    def add_file(
        self, name: str, data: bytes, mimetype: str, session: str | None = None
    ) -> str | None:
        """Serve ``data`` at ``/api/files/<session>/<name>``; returns its full URL."""
        session = session or self.session
        self.files[(session, name)] = (data, mimetype)
        return f"{self.url}/api/files/{session}/{name}"

    def add_lid(self, lid: str, phone: str | None) -> None:
        """What ``GET /api/{session}/lids/{lid}`` answers for ``lid`` (``phone`` None: hidden)."""
        self.lids[_lid(lid)] = phone

    # -- webhooks ----------------------------------------------------------------------------

    def webhook(
        self,
        event: str = "message",
        payload: dict[str, Any] | None = None,
        *,
        hmac_key: str | None = None,
        metadata: dict[str, str] | None = None,
        session: str | None = None,
        engine: str | None = None,
    ) -> wh.WebhookRequest:
        """Build (without sending) the exact request WAHA would POST for one event.

        ``payload`` may be left out only for ``session.status`` (the session's current status).
        """
        session = session or self.session
        if payload is None:
            if event != "session.status":
                raise ValueError(f"a {event} webhook needs a payload")
            payload = wm.session_status_payload(session, self.sessions.get(session, "WORKING"))
        me = {"id": self.me_id, "pushName": "Clínica"}
        engine = engine or wm.engine_of(payload) or self.engine
        env = wh.envelope(event, payload, session=session, engine=engine, me=me, metadata=metadata)
        env["environment"]["version"] = self.version
        return wh.webhook_request(env, hmac_key=hmac_key or self.hmac_key, version=self.version)

    async def deliver(
        self,
        url: str,
        request: wh.WebhookRequest,
        *,
        retries: int = 15,
        retry_delay: float = 0.0,
        timeout_s: float = 30.0,
    ) -> list[int | None]:
        """POST a built webhook, retrying like WAHA on any non-2xx or connection error.

        Returns:
            The status of every attempt, in order; None for a connection-level failure.
        """
        if self._client is None:
            raise RuntimeError("FakeWaha is not started")
        self.emitted.append(request)
        return await wh.post_with_retries(
            self._client,
            url,
            request,
            retries=retries,
            retry_delay=retry_delay,
            timeout_s=timeout_s,
        )

    async def emit(
        self,
        url: str,
        event: str = "message",
        payload: dict[str, Any] | None = None,
        *,
        hmac_key: str | None = None,
        retries: int = 15,
        retry_delay: float = 0.0,
        metadata: dict[str, str] | None = None,
    ) -> list[int | None]:
        """Build and deliver one event (``hmac_key`` defaults to the fake's own key)."""
        request = self.webhook(event, payload, hmac_key=hmac_key, metadata=metadata)
        return await self.deliver(url, request, retries=retries, retry_delay=retry_delay)

    # -- server ------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            try:
                body = json.loads(await request.read())
            except ValueError:
                body = None
        request[_BODY] = body
        headers, query = dict(request.headers), dict(request.query)
        call = WahaCall(request.method, request.path, query, body, headers, time.time())
        self.calls.append(call)
        response = self._injected_failure(request.path) or self._unauthorized(request)
        if response is None:
            try:
                response = await handler(request)
            except web.HTTPNotFound:
                message = f"Cannot {request.method} {request.path}"
                response = _json(404, wr.nest_error(404, message))
        call.status = response.status
        return response

    def _injected_failure(self, path: str) -> web.StreamResponse | None:
        for failure in self._failures:
            if failure.path in (None, path):
                failure.remaining -= 1
                if failure.remaining <= 0:
                    self._failures.remove(failure)
                return _json(failure.status, wr.nest_error(failure.status, "Injected failure"))
        return None

    def _unauthorized(self, request: web.Request) -> web.StreamResponse | None:
        if not self.api_key:
            return None
        given = request.headers.get("X-Api-Key") or request.query.get("x-api-key") or ""
        if hmac.compare_digest(given.encode(), self.api_key.encode()):
            return None
        return _json(401, wr.unauthorized())

    async def _send(self, request: web.Request) -> web.StreamResponse:
        body = request[_BODY]
        required = _REQUIRED[request.path]
        if not isinstance(body, dict):
            body = {}
        missing = [
            f"{name} should not be empty"
            for name in required
            if not isinstance(body.get(name), str) or not body[name]
        ]
        if missing:
            return _json(400, wr.nest_error(400, missing))
        session = body["session"]
        if session not in self.sessions:
            return _json(404, wr.no_session(session))
        if not await self._wait_working(session):
            return _json(422, wr.not_working(session, self.sessions[session]))
        action = request.match_info["action"]
        if action == "sendText":
            given = body.get("id") if isinstance(body.get("id"), str) and body["id"] else None
            wa_id = given or wm.new_wa_id()
            if given is None or given not in self._by_client_id:
                # A pre-generated id sent again is the same message: WhatsApp keeps one.
                self.sent.append(body)
                self.sent_ids.append(wm.serialize_id(True, body["chatId"], wa_id))
                if given is not None:
                    self._by_client_id[given] = body
            else:
                self.repeated_ids.append(given)
            answer = wr.send_text_answer(
                self.send_text_shape, body["chatId"], body["text"], wa_id, self.me_id
            )
            if self.answer_delay_s > 0:  # accepted, but the answer comes late
                await asyncio.sleep(self.answer_delay_s)
            return web.Response(status=201) if answer is None else _json(201, answer)
        if action == "sendSeen":
            ids = body.get("messageIds")
            return _json(201, {"ids": ids if isinstance(ids, list) else []})
        return _json(201, {"result": True})

    async def _wait_working(self, session: str) -> bool:
        deadline = time.monotonic() + self.not_working_wait_s
        while self.sessions.get(session) != "WORKING":
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(min(0.5, self.not_working_wait_s))
        return True

    async def _session_info(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["session"]
        if name not in self.sessions:
            return _json(404, wr.no_session(name))
        config = self.session_configs.get(name)
        info = wr.session_info(name, self.sessions[name], self.engine, self.me_id, config)
        return _json(200, info)

    async def _session_update(self, request: web.Request) -> web.StreamResponse:
        """``PUT /api/sessions/{session}``: replace the config (WAHA restarts the session)."""
        name = request.match_info["session"]
        if name not in self.sessions:
            return _json(404, wr.no_session(name))
        body = request[_BODY]
        if not isinstance(body, dict):
            return _json(400, wr.nest_error(400, ["body must be an object"]))
        config = body.get("config", {})
        errors = wr.webhook_config_errors(config)
        if errors:
            return _json(400, wr.nest_error(400, errors))
        self.session_configs[name] = config
        return _json(200, wr.session_dto(name, self.sessions[name], config))

    async def _file(self, request: web.Request) -> web.StreamResponse:
        key = (request.match_info["session"], request.match_info["file"])
        if key not in self.files:
            return _json(404, wr.file_not_found())
        data, mimetype = self.files[key]
        return web.Response(body=data, content_type=mimetype.split(";")[0].strip())

    async def _lid(self, request: web.Request) -> web.StreamResponse:
        # WAHA takes "123@lid" (URL-encoded) or the bare "123"; an unknown lid gives pn null.
        name = request.match_info["session"]
        if name not in self.sessions:
            return _json(404, wr.no_session(name))
        lid = _lid(request.match_info["lid"])
        return _json(200, {"lid": lid, "pn": self.lids.get(lid)})

    async def _lid_by_phone(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["session"]
        if name not in self.sessions:
            return _json(404, wr.no_session(name))
        phone = request.match_info["phone"]
        phone = phone if "@" in phone else f"{phone}@c.us"
        lid = next((lid for lid, pn in self.lids.items() if pn == phone), None)
        return _json(200, {"lid": lid, "pn": phone})

    async def _server_info(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/health":
            return _json(200, wr.health())
        if request.path == "/ping":
            return _json(200, {"message": "pong"})
        return _json(200, wr.server_version(self.version, self.engine))


def _lid(value: str) -> str:
    return value if value.endswith("@lid") else f"{value.split('@')[0]}@lid"


def _json(status: int, body: dict[str, Any]) -> web.Response:
    return web.json_response(body, status=status)


__all__ = ["FakeWaha", "WahaCall"]
