"""Fixtures for the workspace tests: a runner with staff accounts, and logged-in browsers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
from runner_harness import Live, MakeLive

from clinicflow.runner.auth import WORKSPACE, Workspace
from clinicflow.runner.workspace import staff_ids
from clinicflow.staff.accounts import Account

PASSWORD = "senha-boa-123"
ANA_PHONE = "5511990000011"
BIA_PHONE = "5511990000012"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Staffed:
    """A live runner with Ana and Bia (secretaries, with phones) and Carla (admin)."""

    live: Live
    ana: Account
    bia: Account
    carla: Account

    @property
    def workspace(self) -> Workspace:
        return self.live.app[WORKSPACE]


async def staffed(make_live: MakeLive, **overrides: object) -> Staffed:
    live = await make_live(**overrides)
    accounts = live.app[WORKSPACE].accounts
    ana = accounts.add("Ana", "secretary", PASSWORD, ANA_PHONE)
    bia = accounts.add("Bia", "secretary", PASSWORD, BIA_PHONE)
    carla = accounts.add("Carla", "admin", PASSWORD)
    live.runtime.staff = staff_ids(live.app)
    return Staffed(live, ana, bia, carla)


@dataclass
class Browser:
    """One person's cookie jar against the runner, logged in."""

    http: aiohttp.ClientSession
    live: Live
    csrf: str = ""

    async def page(self, path: str) -> tuple[int, str]:
        async with self.http.get(self.live.url(path), allow_redirects=False) as r:
            text = await r.text()
            found = CSRF.search(text)
            if found:
                self.csrf = found[1]
            return r.status, text

    async def post(
        self, path: str, csrf: str | None = None, **fields: str
    ) -> aiohttp.ClientResponse:
        data = {**fields}
        token = self.csrf if csrf is None else csrf
        if token:
            data["csrf"] = token
        async with self.http.post(self.live.url(path), data=data, allow_redirects=False) as r:
            await r.read()
            return r


Login = Callable[..., Awaitable[Browser]]


@pytest.fixture
async def login() -> AsyncIterator[Login]:
    opened: list[aiohttp.ClientSession] = []

    async def log_in(live: Live, name: str, password: str = PASSWORD) -> Browser:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
        opened.append(http)
        browser = Browser(http, live)
        status, _ = await browser.page("/login")
        assert status == 200
        response = await browser.post("/login", name=name, password=password)
        assert response.status == 303, response.status
        status, _ = await browser.page("/inbox")
        assert status == 200
        return browser

    yield log_in
    for http in opened:
        await http.close()


__all__ = ["ANA_PHONE", "BIA_PHONE", "PASSWORD", "Browser", "Login", "Staffed", "login", "staffed"]
