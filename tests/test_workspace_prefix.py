# ruff: noqa: F811 - pytest fixtures are imported from the harnesses by name
"""The workspace mounted under a path, as one clinic of several (``/c/<clinic>``).

The runner app is a sub-application of a parent ``web.Application`` (what one ``serve`` of
several clinics does): every link, form action, asset, redirect, ``next`` and cookie path of
the login page, the inbox and a conversation starts with ``/c/<clinic>/``; the script reads
the base from the page and works in a real browser; a clinic's session cookie is never sent
to another, and logging into one does not log out of the other.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from browser_harness import CHROMIUM, DevTools, chromium
from runner_harness import (  # noqa: F401 - fixtures
    Live,
    base_config,
    embedder,
    prebuilt,
    waha,
)
from workspace_harness import CSRF, PASSWORD, Browser, Staffed, staffed
from yarl import URL

from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.loader import load_catalog
from clinicflow.runner.app import create_app
from clinicflow.testing.fake_waha import FakeWaha

P1 = "5511988880001@c.us"
P2 = "5511988880002@c.us"
BIA = "5511990000012@c.us"  # workspace_harness.BIA_PHONE's chat
SESSION = "clinicflow_session"
LOGIN = "clinicflow_login"

Mount = Callable[..., Awaitable[dict[str, Staffed]]]


@pytest.fixture
async def mount(
    waha: FakeWaha, prebuilt: Path, tmp_path: Path, embedder: Any
) -> AsyncIterator[Mount]:
    """``await mount("a", "b")``: one parent app serving a runner per clinic under
    ``/c/<id>`` (each with its own data dir, engine on a fixed clock, and Ana, Bia, Carla)."""
    opened: list[tuple[TestServer, aiohttp.ClientSession, list[Engine]]] = []

    async def build(*clinics: str) -> dict[str, Staffed]:
        parent = web.Application()
        made: dict[str, tuple[web.Application, Engine]] = {}
        for clinic in clinics:
            data = tmp_path / clinic
            shutil.copytree(prebuilt, data)
            engine = Engine(load_catalog(), data_dir=data, embedder=embedder,
                            clock=ManualClock())  # fmt: skip
            base = f"/c/{clinic}"
            app = create_app(base_config(waha, data), engine=engine, base=base)
            parent.add_subapp(base, app)
            made[clinic] = (app, engine)
        server = TestServer(parent)
        await server.start_server()
        http = aiohttp.ClientSession()
        opened.append((server, http, [engine for _, engine in made.values()]))
        found = {}
        for clinic, (app, engine) in made.items():
            live = Live(waha, app, server, http, engine)

            async def ready(live: Live = live, **_: object) -> Live:
                return live

            found[clinic] = await staffed(ready)
        return found

    yield build
    for server, http, engines in opened:
        await http.close()
        await server.close()
        for engine in engines:
            engine.close_resources()


def jar() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def login_page(http: aiohttp.ClientSession, live: Live, path: str) -> tuple[str, str]:
    """GET a login page: its HTML and its CSRF token."""
    async with http.get(live.url(path), allow_redirects=False) as r:
        assert r.status == 200, (path, r.status)
        text = await r.text()
    found = CSRF.search(text)
    assert found
    return text, found[1]


async def post_login(
    http: aiohttp.ClientSession, live: Live, base: str, name: str, *, next_: str | None = None
) -> aiohttp.ClientResponse:
    """Log in at ``<base>/login`` (a fresh form each time); the response, not followed."""
    _, csrf = await login_page(http, live, f"{base}/login")
    form = {"csrf": csrf, "name": name, "password": PASSWORD}
    if next_ is not None:
        form["next"] = next_
    async with http.post(live.url(f"{base}/login"), data=form, allow_redirects=False) as r:
        await r.read()
        return r


async def log_in(http: aiohttp.ClientSession, live: Live, base: str, name: str) -> Browser:
    response = await post_login(http, live, base, name)
    assert response.status == 303 and response.headers["Location"] == f"{base}/inbox"
    browser = Browser(http, live)
    assert (await browser.page(f"{base}/inbox"))[0] == 200
    return browser


def cookies_set(response: aiohttp.ClientResponse) -> dict[str, Any]:
    """The response's ``Set-Cookie`` headers by name (``http.cookies.Morsel``)."""
    found: dict[str, Any] = {}
    for header in response.headers.getall("Set-Cookie", []):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        found.update(parsed)
    return found


class Urls(HTMLParser):
    """Every ``href``, ``action`` and ``src`` in a page, and the ``<body>``'s attributes."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.body: dict[str, str | None] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v or "" for k, v in attrs if k in ("href", "action", "src")]
        if tag == "body":
            self.body = dict(attrs)


def assert_inside(html: str, base: str) -> Urls:
    parsed = Urls(html)
    assert parsed.urls
    for url in parsed.urls:
        # The blank favicon is the one URL that is no request at all.
        assert url == "data:," or url.startswith(base + "/"), url
    assert parsed.body.get("data-base") == base
    return parsed


async def say(live: Live, base: str, chat: str, text: str) -> None:
    payload = live.waha.text_message(chat, text)
    await live.waha.emit(live.url(f"{base}/webhooks/waha"), "message", payload, retries=0)


async def hand_off(s: Staffed, base: str, chat: str) -> None:
    live = s.live
    for text in ("quero falar com uma atendente", "falar com atendente humano por favor"):
        await say(live, base, chat, text)
        await live.settle()
        if live.engine.state_of(chat)["status"] == "waiting_human":
            return
    raise AssertionError("no hand-off")


# -- one clinic under /c/a ---------------------------------------------------------------------


async def test_login_redirects_and_cookies_stay_under_the_base(mount: Mount) -> None:
    live = (await mount("a"))["a"].live
    async with jar() as http:
        async with http.get(live.url("/c/a/inbox?x=1"), allow_redirects=False) as r:
            assert r.status == 303
            location = URL(r.headers["Location"])
            assert location.path == "/c/a/login" and location.query["next"] == "/c/a/inbox?x=1"
        page, csrf = await login_page(http, live, "/c/a/login?next=%2Fc%2Fa%2Finbox%3Fx%3D1")
        assert_inside(page, "/c/a")
        assert re.search(r'<form method="post" action="/c/a/login"', page)
        assert 'name="next" value="/c/a/inbox?x=1"' in page
        form = {"csrf": csrf, "name": "Ana", "password": PASSWORD, "next": "/c/a/inbox?x=1"}
        async with http.post(live.url("/c/a/login"), data=form, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/c/a/inbox?x=1"
            set_ = cookies_set(r)
        assert set_[SESSION]["path"] == "/c/a/" and set_[SESSION]["httponly"]
        assert set_[LOGIN]["path"] == "/c/a/login" and set_[LOGIN]["max-age"] == "0"
        # Logged in: the login page sends her on, to the inbox of this clinic only.
        async with http.get(live.url("/c/a/login"), allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/c/a/inbox"
        browser = Browser(http, live)
        status, page = await browser.page("/c/a/inbox")
        assert status == 200
        assert_inside(page, "/c/a")
        response = await browser.post("/c/a/inbox/availability", available="0")
        assert response.headers["Location"] == "/c/a/inbox?ok=availability"
        await browser.page("/c/a/inbox")
        response = await browser.post("/c/a/logout")
        assert response.status == 303 and response.headers["Location"] == "/c/a/login"
        ended = cookies_set(response)[SESSION]
        assert ended["path"] == "/c/a/" and ended["max-age"] == "0"
        assert (await browser.page("/c/a/inbox"))[0] == 303
        async with http.post(live.url("/c/a/logout"), allow_redirects=False) as r:
            assert r.headers["Location"] == "/c/a/login"  # no session: to the login page


@pytest.mark.parametrize(
    "asked",
    [
        "/c/b/inbox",  # another clinic
        "/c/ab/inbox",  # a clinic whose id starts like this one's
        "/inbox",  # the root, outside the app
        "//evil.example/c/a/",
        "/c/a/..//evil.example",
        "/c/a/../b/inbox",
        "/c/a/%2e%2e/b/inbox",
        "/c/a/\\evil.example",
        "/c/a/.\t./b/inbox",  # a browser drops the tab: /c/a/../b/inbox
        "https://evil.example/c/a/inbox",
        "",
    ],
)
async def test_next_outside_the_base_is_refused(mount: Mount, asked: str) -> None:
    live = (await mount("a"))["a"].live
    async with jar() as http:
        page, _ = await login_page(http, live, "/c/a/login?next=" + quote(asked, safe=""))
        assert 'name="next" value="/c/a/inbox"' in page
        response = await post_login(http, live, "/c/a", "Ana", next_=asked)
        assert response.status == 303 and response.headers["Location"] == "/c/a/inbox"
    async with jar() as http:
        await log_in(http, live, "/c/a", "Ana")
        async with http.get(live.url("/c/a/login?next=" + quote(asked, safe="")),
                            allow_redirects=False) as r:  # fmt: skip
            assert r.headers["Location"] == "/c/a/inbox"


async def test_next_inside_the_base_is_kept(mount: Mount) -> None:
    live = (await mount("a"))["a"].live
    async with jar() as http:
        wanted = "/c/a/inbox/c/" + quote(P1, safe="")
        response = await post_login(http, live, "/c/a", "Ana", next_=wanted)
        assert response.headers["Location"] == wanted


async def test_every_url_of_the_inbox_and_a_conversation_starts_with_the_base(
    mount: Mount,
) -> None:
    s = (await mount("a"))["a"]
    live = s.live
    await hand_off(s, "/c/a", P1)
    await hand_off(s, "/c/a", P2)
    async with jar() as http, jar() as other:
        carla = await log_in(http, live, "/c/a", "Carla")  # an admin: every action's form
        pages = {path: await carla.page(path) for path in (
            "/c/a/inbox", f"/c/a/inbox/c/{P1}", f"/c/a/inbox/c/{P2}", "/c/a/inbox/c/nobody",
        )}  # fmt: skip
        assert [status for status, _ in pages.values()] == [200, 200, 200, 404]
        for _, page in pages.values():
            assert_inside(page, "/c/a")
        conversation = Urls(pages[f"/c/a/inbox/c/{P1}"][1]).urls
        chat = "/c/a/inbox/c/" + quote(P1, safe="")
        assert {f"{chat}/{a}" for a in ("reply", "handback", "scheduled", "close", "claim",
                                        "transfer")} <= set(conversation)  # fmt: skip
        assert {"/c/a/inbox", "/c/a/logout", chat, "/c/a/inbox/static/inbox.js",
                "/c/a/inbox/static/inbox.css"} <= set(conversation)  # fmt: skip
        async with http.get(live.url(f"/c/a/inbox/queue?open={quote(P1)}")) as r:
            fragment = await r.text()
        assert Urls(fragment).urls and all(u.startswith("/c/a/inbox/c/") for u in
                                           Urls(fragment).urls)  # fmt: skip
        for name in ("inbox.js", "inbox.css"):
            async with http.get(live.url(f"/c/a/inbox/static/{name}")) as r:
                assert r.status == 200
        # The actions send her back inside the base.
        response = await carla.post(f"{chat}/reply", text="Oi, aqui é a Carla")
        assert response.headers["Location"] == f"{chat}?ok=reply"
        bia = await log_in(other, live, "/c/a", "Bia")
        chat2 = "/c/a/inbox/c/" + quote(P2, safe="")
        await bia.page(chat2)
        response = await bia.post(f"{chat2}/transfer", to="Ana")
        assert response.headers["Location"] == "/c/a/inbox?ok=transfer"
        await live.settle()
        assert any("Veja em /c/a/inbox." in m for m in live.sent_to("5511990000011@c.us"))


async def test_the_script_builds_its_urls_from_the_page_base(mount: Mount) -> None:
    live = (await mount("a"))["a"].live
    async with jar() as http:
        browser = await log_in(http, live, "/c/a", "Ana")
        _, page = await browser.page("/c/a/inbox")
        assert assert_inside(page, "/c/a").body["data-base"] == "/c/a"
        async with http.get(live.url("/c/a/inbox/static/inbox.js")) as r:
            script = await r.text()
    assert "var base = document.body.dataset.base" in script
    code = "\n".join(line for line in script.splitlines() if not line.lstrip().startswith("//"))
    # Every path literal continues a URL ("+"); the ones that start one follow the base.
    paths = list(re.finditer(r'"(/[^"]*)"', code))
    assert all(code[: m.start()].endswith("+ ") for m in paths), [m[0] for m in paths]
    first = {m[1] for m in paths if code[: m.start()].endswith("base + ")}
    assert first == {"/login", "/inbox/queue", "/inbox/c/", "/inbox/events"}


async def test_an_unauthenticated_dashboard_points_to_this_clinics_login(mount: Mount) -> None:
    live = (await mount("a"))["a"].live
    async with jar() as http:
        async with http.get(live.url("/c/a/dashboard")) as r:
            assert r.status == 401 and "/c/a/login" in await r.text()
        await log_in(http, live, "/c/a", "Carla")
        async with http.get(live.url("/c/a/dashboard")) as r:
            assert r.status == 200  # the session cookie's path covers the dashboard


# -- two clinics on one host -------------------------------------------------------------------


async def test_two_clinics_keep_their_sessions_apart(mount: Mount) -> None:
    clinics = await mount("a", "b")
    a, b = clinics["a"].live, clinics["b"].live
    async with jar() as http:  # one browser, both clinics
        await log_in(http, a, "/c/a", "Ana")
        await log_in(http, b, "/c/b", "Bia")
        ours = {c["path"]: c.value for c in http.cookie_jar if c.key == SESSION}
        assert set(ours) == {"/c/a/", "/c/b/"} and len(set(ours.values())) == 2
        # Logging into b did not log out of a; each page shows its own person.
        status, page = await Browser(http, a).page("/c/a/inbox")
        assert status == 200 and '<span id="me">Ana</span>' in page
        status, page = await Browser(http, b).page("/c/b/inbox")
        assert status == 200 and '<span id="me">Bia</span>' in page
        # a's cookie is never sent to b (nor b's to a).
        sent = http.cookie_jar.filter_cookies(URL(a.url("/c/b/inbox")))
        assert sent[SESSION].value == ours["/c/b/"]
        sent = http.cookie_jar.filter_cookies(URL(a.url("/c/a/inbox")))
        assert sent[SESSION].value == ours["/c/a/"]
        # Logging out of a leaves b open.
        browser = Browser(http, a)
        await browser.page("/c/a/inbox")
        assert (await browser.post("/c/a/logout")).status == 303
        assert (await Browser(http, a).page("/c/a/inbox"))[0] == 303
        assert (await Browser(http, b).page("/c/b/inbox"))[0] == 200
    # A session of one clinic means nothing to the other's database.
    cookie = {"Cookie": f"{SESSION}={ours['/c/a/']}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(a.url("/c/b/inbox"), allow_redirects=False, headers=cookie) as r,
    ):
        assert r.status == 303 and r.headers["Location"].startswith("/c/b/login")


# -- in a real browser -----------------------------------------------------------------------


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
async def test_the_inbox_works_under_the_base_in_a_browser(mount: Mount, tmp_path: Path) -> None:
    s = (await mount("a"))["a"]
    live = s.live
    s.workspace.accounts.set_available(s.bia.id, False)  # everything goes to Ana
    origin = live.url("/")[:-1]
    async with chromium(tmp_path / "profile") as devtools, aiohttp.ClientSession() as http:
        async with http.get(f"{devtools}/json/list") as response:
            target = next(t for t in await response.json() if t["type"] == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = DevTools(ws)
            for domain in ("Runtime", "Log", "Page"):
                await cdp.send(f"{domain}.enable")

            async def js(expression: str) -> Any:
                found = await cdp.send("Runtime.evaluate", expression=expression,
                                       returnByValue=True, awaitPromise=True)  # fmt: skip
                assert "exceptionDetails" not in found, found
                return found["result"].get("value")

            async def until(expression: str) -> None:
                async with asyncio.timeout(20):
                    while True:
                        found = await cdp.send("Runtime.evaluate", returnByValue=True,
                                               expression=f"Boolean({expression})")  # fmt: skip
                        if "exceptionDetails" not in found and found["result"].get("value"):
                            return
                        await asyncio.sleep(0.1)

            await cdp.send("Page.navigate", url=f"{origin}/c/a/inbox")
            await until("location.pathname === '/c/a/login' && document.readyState === 'complete'")
            fill = "".join(
                f"f.querySelector('[name={k}]').value = {json.dumps(v)};"
                for k, v in (("name", "Ana"), ("password", PASSWORD))
            )
            await js(f"(() => {{ const f = document.forms[0]; {fill} "
                     "f.querySelector('button').click(); })()")  # fmt: skip
            await until("location.pathname === '/c/a/inbox' && document.body.dataset.live === '1'")
            # A hand-off appears without reloading: the events and the queue's reload both
            # went to /c/a.
            await js("document.body.dataset.marker = 'same page'")
            await hand_off(s, "/c/a", P1)
            await until(f"document.querySelector('li[data-chat=\"{P1}\"]')")
            assert await js("document.body.dataset.marker") == "same page"
            href = await js(f"document.querySelector('li[data-chat=\"{P1}\"] a').pathname")
            assert href == "/c/a/inbox/c/" + quote(P1, safe="")
            await asyncio.sleep(0.2)  # late console messages
            problems = cdp.problems()
            cdp.reader.cancel()
    assert problems == []
