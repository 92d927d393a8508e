"""Two runner processes on one PostgreSQL behave as one, even when one is SIGKILLed mid-burst.

Each runner has its own data dir (index, lock, spool) and port; both use one database. The
fake WAHA spreads the webhooks over both (two webhook URLs, or a balancer in front), and
after the SIGKILL sends everything to the one left, retrying what the dead one never
acknowledged. Then: every inbound processed once, every reply sent once, each chat's
messages and replies in order.
"""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
import shutil
import signal
from pathlib import Path

import aiohttp
import pytest
from conftest import fresh_schema
from runner_harness import embedder, prebuilt, waha  # noqa: F401
from test_runner_crash import _free_port, _health, _settled, _start, chat_record

from clinicflow.database import DatabaseUrl, connect
from clinicflow.testing.fake_waha import FakeWaha
from clinicflow.testing.waha_webhooks import WebhookRequest

CHATS = [f"55118{n:08d}@c.us" for n in range(60)]
TEXTS = ["oi", "meu nome é Ana", "quanto custa?"]


async def test_two_runners_one_sigkilled_lose_nothing_repeat_nothing_keep_order(
    waha: FakeWaha, prebuilt: Path, tmp_path: Path, postgres_server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    url = fresh_schema(postgres_server)
    monkeypatch.setenv("CLINICFLOW_DATABASE_URL", url)  # both runners inherit it
    await _scenario(waha, prebuilt, tmp_path, url)


async def _scenario(waha: FakeWaha, prebuilt: Path, tmp_path: Path, url: str) -> None:
    dirs = [tmp_path / "a", tmp_path / "b"]
    for data in dirs:
        shutil.copytree(prebuilt, data)
    ports = [_free_port(), _free_port()]
    hooks = [f"http://127.0.0.1:{p}/webhooks/waha" for p in ports]
    log = tmp_path / "runners.log"
    requests: dict[str, list[WebhookRequest]] = {chat: [] for chat in CHATS}
    base = 1_760_000_000

    def build(chat: str, n: int) -> WebhookRequest:
        request = waha.webhook("message", waha.text_message(chat, TEXTS[n], timestamp=base + n))
        requests[chat].append(request)
        return request

    async with aiohttp.ClientSession() as http:
        procs = [_start(waha, d, p, log) for d, p in zip(dirs, ports, strict=True)]
        try:
            await asyncio.gather(*[_health(http, p, timeout=180) for p in ports])
            # "oi" from every chat, spread over both runners.
            await asyncio.gather(
                *[waha.deliver(hooks[i % 2], build(c, 0)) for i, c in enumerate(CHATS)]
            )
            await asyncio.sleep(0.3)
            # The second message of each chat to the other runner, and SIGKILL mid-burst.
            second = [
                asyncio.create_task(waha.deliver(hooks[(i + 1) % 2], build(c, 1), retries=0))
                for i, c in enumerate(CHATS)
            ]
            await asyncio.sleep(0.05)
            procs[0].send_signal(signal.SIGKILL)
            procs[0].wait()
            statuses = await asyncio.gather(*second, return_exceptions=True)
            # WAHA retries what the dead runner never acknowledged, to the one left.
            for i, chat in enumerate(CHATS):
                if (i + 1) % 2 == 0 and statuses[i] != [200]:
                    assert await waha.deliver(hooks[1], requests[chat][1]) == [200]
            await asyncio.gather(*[waha.deliver(hooks[1], build(c, 2)) for c in CHATS])
            # And WAHA's late retries of early deliveries: duplicates, all of them.
            await asyncio.gather(*[waha.deliver(hooks[1], requests[c][0]) for c in CHATS])
            await _settled(http, ports[1], timeout=240)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]

    db = connect(DatabaseUrl(url))
    try:
        assert db.execute("SELECT DISTINCT status FROM inbox").fetchall() == [("done",)]
        assert db.execute("SELECT COUNT(*) FROM inbox").fetchone()[0] == 3 * len(CHATS)
        for chat in CHATS:
            inbound, outbox, sent = chat_record(db, waha, chat)
            assert inbound == TEXTS, chat  # each once, in order (merged bursts split back)
            assert outbox, chat
            assert sent == outbox, chat  # every reply sent once, in order
    finally:
        db.close()
