"""Engines in worker processes behind the runner: order per chat, no global stall, health."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer
from runner_harness import base_config, data_dir, embedder, prebuilt, until, waha  # noqa: F401

from clinicflow.clock import ManualClock
from clinicflow.llm import LLMConfig
from clinicflow.runner.app import create_app
from clinicflow.runner.keys import ENGINE, RUNTIME
from clinicflow.storage import Store
from clinicflow.testing.fake_gemini import FakeGemini
from clinicflow.testing.fake_waha import FakeWaha
from clinicflow.workers import EnginePool

# A weekday at 10:00 in São Paulo, whatever the real hour.
OPEN_HOURS = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)


async def _serve(waha: FakeWaha, data: Path, **overrides: Any) -> TestServer:
    config = base_config(waha, data, **overrides)
    server = TestServer(create_app(config, clock=ManualClock(OPEN_HOURS)))
    await server.start_server()
    return server


def _turns(data: Path, chat: str) -> list[str]:
    store = Store(data)
    try:
        rows = store.query(
            "SELECT text FROM messages WHERE chat_id = ? AND direction = 'in' ORDER BY id", (chat,)
        )
    finally:
        store.close()
    return [r["text"] for r in rows]


async def test_each_chat_keeps_its_order_across_two_workers(waha: FakeWaha, data_dir: Path) -> None:
    server = await _serve(waha, data_dir, workers=2)
    try:
        pool = server.app[ENGINE]
        assert isinstance(pool, EnginePool)
        chats = [f"55119{n:08d}@c.us" for n in range(6)]
        assert {pool.worker_of(c) for c in chats} == {0, 1}  # both workers take chats
        texts = ["oi", "queria saber do DIU", "quanto custa?", "obrigada"]
        hook = str(server.make_url("/webhooks/waha"))

        async def chat(chat_id: str) -> None:
            for text in texts:
                payload = waha.text_message(chat_id, text)
                assert await waha.emit(hook, "message", payload, retries=0) == [200]

        await asyncio.gather(*(chat(c) for c in chats))
        runtime = server.app[RUNTIME]
        await until(lambda: runtime.inbox.pending_count() == 0, 120)
        for chat_id in chats:  # a burst may be merged into one turn, never reordered
            assert "\n".join(_turns(data_dir, chat_id)).split("\n") == texts
    finally:
        await server.close()


async def test_a_hanging_gemini_holds_its_chat_alone_and_health_says_stuck(
    waha: FakeWaha, data_dir: Path
) -> None:
    async with FakeGemini() as gemini, aiohttp.ClientSession() as http:
        gemini.hang_next(4, seconds=30)
        llm = LLMConfig(api_key=gemini.api_key, base_url=gemini.url, retries=0)
        server = await _serve(waha, data_dir, workers=1, llm=llm, stuck_after=1.0)
        try:
            hook = str(server.make_url("/webhooks/waha"))
            unclear = waha.text_message("5511900000001@c.us", "e aquilo que te falei da outra vez")
            assert await waha.emit(hook, "message", unclear, retries=0) == [200]
            await until(lambda: len(gemini.requests) >= 1, 60)
            began = time.monotonic()
            others = [f"55119000001{n:02d}@c.us" for n in range(5)]
            for chat in others:
                start = time.monotonic()
                assert await waha.emit(hook, "message", waha.text_message(chat, "oi")) == [200]
                assert time.monotonic() - start < 1.0  # acks never wait for a turn
            await until(lambda: all(any(m["chatId"] == c for m in waha.sent) for c in others), 10)
            assert time.monotonic() - began < 3.5  # ...nor for Gemini: other chats answered
            assert not any(m["chatId"] == "5511900000001@c.us" for m in waha.sent)
            stuck: dict[str, Any] = {}

            async def health() -> tuple[int, dict[str, Any]]:
                async with http.get(server.make_url("/health")) as r:
                    return r.status, await r.json()

            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status, body = await health()
                if status == 503:
                    stuck = body
                    break
                await asyncio.sleep(0.1)
            assert stuck["engines"]["status"] == "stuck", stuck
            assert stuck["engines"]["workers"][0]["oldest_s"] >= 1.0
            # The turn ends (its LLM budget is spent) and the worker is healthy again.
            await until(lambda: any(m["chatId"] == "5511900000001@c.us" for m in waha.sent), 30)
            status, body = await health()
            assert status == 200 and body["engines"]["status"] == "ok"
        finally:
            await server.close()


async def test_a_database_locked_by_another_process_never_stalls_acks_and_nothing_is_lost(
    waha: FakeWaha, data_dir: Path
) -> None:
    server = await _serve(waha, data_dir, workers=1)
    try:
        runtime = server.app[RUNTIME]
        path = runtime.inbox.identities.conn.execute("PRAGMA database_list").fetchone()[2]
        hook = str(server.make_url("/webhooks/waha"))
        chats = [f"55119000002{n:02d}@c.us" for n in range(4)]
        holder = sqlite3.connect(path, timeout=0, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # an operator's session, a long report...
        try:
            acks, payloads = [], [waha.text_message(chat, "oi") for chat in chats]
            for payload in payloads:
                start = time.monotonic()
                assert await waha.emit(hook, "message", payload, retries=0) == [200]
                acks.append(time.monotonic() - start)
            # The first write waits the loop's short busy timeout; the rest go to the spool.
            assert max(acks) < 1.0 and sorted(acks)[len(acks) // 2] < 0.1, acks
            async with aiohttp.ClientSession() as http:
                await asyncio.sleep(1.2)
                async with http.get(server.make_url("/health")) as r:
                    status, body = r.status, await r.json()
            assert status == 503 and body["database"].startswith("locked"), body
            assert body["spooled"] == len(chats)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        await until(lambda: all(any(m["chatId"] == c for m in waha.sent) for c in chats), 30)
        await until(lambda: runtime.inbox.pending_count() == 0, 30)
        assert runtime.spool is not None and len(runtime.spool) == 0
        # WAHA retrying a spooled webhook after the lock changes nothing: each message once.
        assert await waha.emit(hook, "message", payloads[0], retries=0) == [200]
        await asyncio.sleep(0.5)
        for chat in chats:
            assert _turns(data_dir, chat) == ["oi"]
        assert sum(m["chatId"] == chats[0] for m in waha.sent) == sum(
            m["chatId"] == chats[1] for m in waha.sent
        )
    finally:
        await server.close()
