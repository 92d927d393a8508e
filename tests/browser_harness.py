"""Headless Chromium driven through the DevTools protocol, for the browser tests.

Chromium is Debian's ``chromium`` (``.ci/run`` installs it); tests that need it are skipped
when it is missing. :class:`DevTools` is a minimal protocol client over one page target
(aiohttp's websocket client): it collects console messages, log entries and exceptions while
the page runs, so a test can assert the page raised none.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

BAD = ("error", "warning")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)


class DevTools:
    """A minimal DevTools-protocol client over one page target."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            data = json.loads(message.data)
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            else:
                self.events.append(data)

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        number = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[number] = future
        await self.ws.send_json({"id": number, "method": method, "params": params})
        reply = await asyncio.wait_for(future, 30)
        assert "error" not in reply, reply
        return dict(reply.get("result", {}))

    async def wait_for(self, method: str, timeout: float = 30) -> None:
        async with asyncio.timeout(timeout):
            while not any(e.get("method") == method for e in self.events):
                await asyncio.sleep(0.05)

    def problems(self) -> list[dict[str, Any]]:
        """Console errors/warnings, log errors and uncaught exceptions seen so far."""
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            thrown = method == "Runtime.exceptionThrown"
            console = method == "Runtime.consoleAPICalled" and params.get("type") in BAD
            logged = method == "Log.entryAdded" and params["entry"]["level"] in BAD
            if thrown or console or logged:
                found.append(e)
        return found


@contextlib.asynccontextmanager
async def chromium(profile: Path, *extra: str) -> AsyncIterator[str]:
    """Headless Chromium with remote debugging (and ``extra`` flags); yields the DevTools
    HTTP address."""
    assert CHROMIUM is not None
    process = await asyncio.create_subprocess_exec(
        CHROMIUM, *FLAGS, *extra, f"--user-data-dir={profile}", "about:blank",
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        async with asyncio.timeout(60):
            while not port_file.exists() or not port_file.read_text().strip():
                await asyncio.sleep(0.1)
        yield f"http://127.0.0.1:{port_file.read_text().split()[0]}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), 10)
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
