"""SIGKILL in the middle of a burst: after a restart no message is lost, no reply repeated."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from runner_harness import API_KEY, data_dir, embedder, prebuilt, waha  # noqa: F401

from clinicflow.database import connect, resolve
from clinicflow.testing.fake_waha import FakeWaha
from clinicflow.testing.waha_webhooks import WebhookRequest

# The storage, runner, follow-up and crash tests run on SQLite and PostgreSQL (conftest.py).
pytestmark = pytest.mark.usefixtures("backend")

CHATS = [f"55119{n:08d}@c.us" for n in range(5)]
FIRST = ["oi", "tudo bem?", "queria saber do DIU"]
SECOND = ["meu nome é Ana", "quanto custa?"]
THIRD = ["obrigada"]


def chat_record(db: Any, waha: FakeWaha, chat: str) -> tuple[list[str], list[str], list[str]]:
    """One chat as stored and sent: her messages line by line (a merged burst split back),
    the outbox's texts and WAHA's sent texts, each in order."""
    inbound = [
        line
        for (text,) in db.execute(
            "SELECT text FROM messages WHERE chat_id = ? AND direction = 'in' ORDER BY id", (chat,)
        )
        for line in text.split("\n")
    ]
    outbox = [
        text
        for (text,) in db.execute("SELECT text FROM outbox WHERE chat_id = ? ORDER BY id", (chat,))
    ]
    sent = [m["text"] for m in waha.sent if m["chatId"] == chat]
    return inbound, outbox, sent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(waha: FakeWaha, data: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.update(
        WAHA_URL=waha.url,
        WAHA_API_KEY=API_KEY,
        CLINICFLOW_DATA=str(data),
        CLINICFLOW_PORT=str(port),
        CLINICFLOW_BURST_QUIET="0.4",
        CLINICFLOW_TYPING_DELAY_MAX="0",
        CLINICFLOW_SEND_RETRY_BASE="0.05",
        CLINICFLOW_SEND_RETRY_MAX="0.5",
        CLINICFLOW_STATUS_POLL="1",
    )
    env.pop("GEMINI_API_KEY", None)
    env.pop("GOOGLE_API_KEY", None)
    root = Path(__file__).resolve().parents[1]
    with log.open("ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            [sys.executable, "-m", "clinicflow.runner"], env=env, cwd=root, stdout=out, stderr=out
        )


async def _health(http: aiohttp.ClientSession, port: int, timeout: float = 60) -> dict[str, int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with http.get(f"http://127.0.0.1:{port}/health") as r:
                if r.status == 200:
                    return dict(await r.json())
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("runner did not start")


async def _settled(http: aiohttp.ClientSession, port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        health = await _health(http, port)
        if health["outbox_depth"] == 0 and health["inbox_pending"] == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError("runner did not settle")


async def test_sigkill_mid_burst_loses_nothing_and_repeats_nothing(
    waha: FakeWaha, data_dir: Path, tmp_path: Path
) -> None:
    port = _free_port()
    hook = f"http://127.0.0.1:{port}/webhooks/waha"
    log = tmp_path / "runner.log"
    requests: dict[str, list[WebhookRequest]] = {chat: [] for chat in CHATS}
    base = 1_760_000_000

    def build(chat: str, text: str, n: int) -> WebhookRequest:
        payload = waha.text_message(chat, text, timestamp=base + n)
        request = waha.webhook("message", payload)
        requests[chat].append(request)
        return request

    async with aiohttp.ClientSession() as http:
        first = _start(waha, data_dir, port, log)
        try:
            await _health(http, port)
            for n, text in enumerate(FIRST):
                await asyncio.gather(*[waha.deliver(hook, build(c, text, n)) for c in CHATS])
            await asyncio.sleep(0.5)  # the first bursts are being processed and sent
            for n, text in enumerate(SECOND, start=10):
                statuses = await asyncio.gather(
                    *[waha.deliver(hook, build(c, text, n), retries=0) for c in CHATS]
                )
                assert all(s == [200] for s in statuses)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        second = _start(waha, data_dir, port, log)
        try:
            await _health(http, port)
            for n, text in enumerate(THIRD, start=20):
                await asyncio.gather(*[waha.deliver(hook, build(c, text, n)) for c in CHATS])
            # WAHA retrying earlier deliveries after the crash: all duplicates.
            await asyncio.gather(*[waha.deliver(hook, requests[c][0]) for c in CHATS])
            await _settled(http, port)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=30) == 0, log.read_text()[-3000:]

    db = connect(resolve(data_dir))  # SQLite or PostgreSQL (the backend fixture)
    try:
        assert db.execute("SELECT DISTINCT status FROM inbox").fetchall() == [("done",)]
        for chat in CHATS:
            inbound, outbox, sent = chat_record(db, waha, chat)
            assert inbound == FIRST + SECOND + THIRD, chat
            assert sent == outbox, chat
            assert outbox, chat
    finally:
        db.close()
