"""Shared fixtures for the runner tests: a pre-built data dir, the fake WAHA, a live runner."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.loader import load_catalog
from clinicflow.model import Catalog, Staff
from clinicflow.runner.app import create_app
from clinicflow.runner.config import RunnerConfig
from clinicflow.runner.keys import RUNTIME, Runtime
from clinicflow.testing.fake_waha import FakeWaha

API_KEY = "waha-test-key"
STAFF_TOKEN = "staff-secret"
STAFF_PHONE = "5511990000001@c.us"


@pytest.fixture(scope="session")
def embedder() -> Any:
    from clinicflow.embeddings import USEEmbedder

    return USEEmbedder()


@pytest.fixture(scope="session")
def prebuilt(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Path:
    """A data dir with the LanceDB index built once for the whole session."""
    data = tmp_path_factory.mktemp("prebuilt")
    Engine(load_catalog(), data_dir=data, embedder=embedder).close_resources()
    return data


@pytest.fixture
def data_dir(prebuilt: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(prebuilt, target)
    return target


@pytest.fixture
async def waha() -> AsyncIterator[FakeWaha]:
    async with FakeWaha(api_key=API_KEY) as fake:
        yield fake


@dataclass
class Live:
    """A running runner wired to the fake WAHA."""

    waha: FakeWaha
    app: web.Application
    server: TestServer
    http: aiohttp.ClientSession
    engine: Engine

    @property
    def hook(self) -> str:
        return str(self.server.make_url("/webhooks/waha"))

    @property
    def runtime(self) -> Runtime:
        return self.app[RUNTIME]

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))

    async def say(self, chat: str, text: str, **options: Any) -> list[int | None]:
        payload = self.waha.text_message(chat, text, **options)
        return await self.waha.emit(self.hook, "message", payload, retries=0)

    def sent_to(self, chat: str) -> list[str]:
        return [m["text"] for m in self.waha.sent if m["chatId"] == chat]

    def turns(self, chat: str) -> list[dict[str, Any]]:
        return self.engine.store.query(
            "SELECT text FROM messages WHERE chat_id = ? AND direction = 'in' ORDER BY id",
            (chat,),
        )

    async def settle(self, timeout: float = 15.0) -> None:
        """Wait until the inbox and the outbox are empty and nothing runs."""
        rt = self.runtime
        await until(
            lambda: not rt.inbox.pending() and rt.outbox.depth() == 0 and rt.sender.active == 0,
            timeout,
        )


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


def with_staff(*phones: str) -> Catalog:
    """The bundled catalog with other staff phones (same digest: the prebuilt index fits)."""
    catalog = load_catalog()
    staff = tuple(Staff(name=f"Equipe {i}", phone=p) for i, p in enumerate(phones, 1))
    return replace(catalog, clinic=replace(catalog.clinic, staff=staff))


def base_config(waha: FakeWaha, data_dir: Path, **overrides: Any) -> RunnerConfig:
    config = RunnerConfig(
        waha_url=waha.url,
        waha_api_key=API_KEY,
        data_dir=data_dir,
        staff_token=STAFF_TOKEN,
        typing_delay_max=0,
        burst_quiet=0,
        human_idle=0,
        send_retry_base=0.05,
        send_retry_max=0.2,
        status_poll=0.2,
    )
    return replace(config, **overrides)


MakeLive = Callable[..., Awaitable[Live]]


@pytest.fixture
async def make_live(waha: FakeWaha, data_dir: Path, embedder: Any) -> AsyncIterator[MakeLive]:
    opened: list[tuple[TestServer, aiohttp.ClientSession, Engine]] = []

    async def make(**overrides: Any) -> Live:
        catalog = overrides.pop("catalog", None) or load_catalog()
        engine = Engine(catalog, data_dir=data_dir, embedder=embedder, clock=ManualClock())
        transcriber = overrides.pop("transcriber", None)
        app = create_app(base_config(waha, data_dir, **overrides), engine=engine,
                         transcriber=transcriber)  # fmt: skip
        server = TestServer(app)
        await server.start_server()
        http = aiohttp.ClientSession()
        opened.append((server, http, engine))
        return Live(waha, app, server, http, engine)

    yield make
    for server, http, engine in opened:
        await http.close()
        await server.close()
        engine.close_resources()


def first_contact(engine: Engine, *replies: str) -> list[str]:
    """What a new patient receives: the bot's replies, then the clinic's privacy notice."""
    from clinicflow.templates import render

    clinic = engine.catalog.clinic
    if clinic.privacy_notice is None:
        return list(replies)
    facts = dict(clinic.facts)
    facts.setdefault("nome", clinic.name)
    return [*replies, render(clinic.privacy_notice, {}, facts).strip()]
