# ruff: noqa: F811 - pytest fixtures are imported from the harnesses by name
"""The secretaries' workspace over HTTP: login, CSRF, rate limit, tokens, who sees what,
assignment, notices and re-notices, WhatsApp commands as a person, the report per person."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import aiohttp
from runner_harness import (  # noqa: F401 - fixtures
    STAFF_PHONE,
    STAFF_TOKEN,
    MakeLive,
    data_dir,
    embedder,
    make_live,
    prebuilt,
    until,
    waha,
)
from workspace_harness import (  # noqa: F401 - fixture
    ANA_PHONE,
    BIA_PHONE,
    PASSWORD,
    Login,
    Staffed,
    login,
    staffed,
)

from clinicflow.clock import ManualClock
from clinicflow.metrics import report
from clinicflow.runner.workspace import renotify

P1 = "5511988880001@c.us"
P2 = "5511988880002@c.us"
P3 = "5511988880003@c.us"
ADMIN = {"Authorization": f"Bearer {STAFF_TOKEN}"}
URGENT = "estou sangrando muito, já encharquei o absorvente"
ANA = f"{ANA_PHONE}@c.us"
BIA = f"{BIA_PHONE}@c.us"
FORM_ACTIONS = ("reply", "handback", "scheduled", "close", "claim", "release", "transfer")


async def hand_off(
    s: Staffed, chat: str, text: str = "quero falar com uma atendente", *, closed: bool = False
) -> None:
    live = s.live

    async def settle() -> None:
        if closed:  # the notices wait in the outbox for the opening
            await until(lambda: not live.runtime.inbox.pending())
        else:
            await live.settle()

    await live.say(chat, text)
    await settle()
    if live.engine.state_of(chat)["status"] != "waiting_human":
        await live.say(chat, "falar com atendente humano por favor")
        await settle()
    assert live.engine.state_of(chat)["status"] == "waiting_human"


def clock(s: Staffed) -> ManualClock:
    c = s.live.engine.clock
    assert isinstance(c, ManualClock)
    return c


def holder(s: Staffed, chat: str) -> str | None:
    found = s.workspace.desk.holder(chat)
    return found.name if found else None


# -- login, cookies, CSRF, rate limit, tokens ---------------------------------------------------


async def test_login_cookie_logout_and_wrong_password(make_live: MakeLive, login: Login) -> None:
    s = await staffed(make_live)
    live = s.live
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(live.url("/inbox"), allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"].startswith("/login")
        async with http.get(live.url("/login")) as r:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())[1]  # type: ignore[index]
        form = {"csrf": csrf, "name": "ana", "password": PASSWORD}  # names in any case
        async with http.post(live.url("/login"), data=form, allow_redirects=False,
                             headers={"X-Forwarded-Proto": "https"}) as r:  # fmt: skip
            assert r.status == 303 and r.headers["Location"] == "/inbox"
            cookie = r.headers.getall("Set-Cookie")
    session = next(c for c in cookie if c.startswith("clinicflow_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Secure" in session
    browser = await login(live, "Ana")
    async with browser.http.post(live.url("/login"), allow_redirects=False) as r:
        assert r.status == 403  # a login form without its CSRF token
    status, page = await browser.page("/inbox")
    assert status == 200 and "Ana" in page and "secretária" in page
    assert (await browser.post("/logout")).status == 303
    status, _ = await browser.page("/inbox")
    assert status == 303  # the session ended
    # A disabled account's sessions end at once; a reset password ends them too.
    bia = await login(live, "Bia")
    s.workspace.accounts.reset_password("Bia", "outra-senha-456")
    assert (await bia.page("/inbox"))[0] == 303
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(live.url("/login")) as r:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())[1]  # type: ignore[index]
        form = {"csrf": csrf, "name": "Bia", "password": PASSWORD}
        async with http.post(live.url("/login"), data=form, allow_redirects=False) as r:
            assert r.status == 401
            assert "Nome ou senha incorretos" in await r.text()
            assert not any(c.startswith("clinicflow_session=") for c in
                           r.headers.getall("Set-Cookie", []))  # fmt: skip


async def test_a_wrong_password_is_rate_limited(make_live: MakeLive, login: Login) -> None:
    s = await staffed(make_live)
    live = s.live
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:

        async def attempt(password: str) -> int:
            async with http.get(live.url("/login")) as r:
                csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())[1]  # type: ignore[index]
            form = {"csrf": csrf, "name": "Ana", "password": password}
            async with http.post(live.url("/login"), data=form, allow_redirects=False) as r:
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) > 0
                    assert "Muitas tentativas" in await r.text()
                return r.status

        assert [await attempt(f"errada-{i}") for i in range(5)] == [401] * 5
        assert await attempt(PASSWORD) == 429  # even the right one, until the window passes
        clock(s).advance(timedelta(minutes=16))
        assert await attempt(PASSWORD) == 303


async def test_wrong_passwords_for_one_name_lock_that_account_only(
    make_live: MakeLive, login: Login
) -> None:
    # Every login comes from one address (the reverse proxy's): someone mistyping, or
    # guessing, one name's password must not lock the other secretaries out of the inbox.
    s = await staffed(make_live)
    live = s.live

    async def attempt(name: str, password: str) -> int:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(live.url("/login")) as r:
                csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())[1]  # type: ignore[index]
            form = {"csrf": csrf, "name": name, "password": password}
            async with http.post(live.url("/login"), data=form, allow_redirects=False) as r:
                return r.status

    assert [await attempt("Carla", f"errada-{i}") for i in range(5)] == [401] * 5
    assert await attempt("Carla", PASSWORD) == 429, "her account is locked, right or wrong"
    assert [await attempt("Chefe", f"errada-{i}") for i in range(5)] == [401] * 5
    assert await attempt("Bia", PASSWORD) == 303, "another account, same address"
    assert await attempt("Ana", "errada") == 401, "her own count is her own"
    assert await attempt("Ana", PASSWORD) == 303


async def test_every_form_rejects_a_missing_or_wrong_csrf_token(
    make_live: MakeLive, login: Login
) -> None:
    s = await staffed(make_live)
    live = s.live
    await hand_off(s, P1)
    assert holder(s, P1) == "Ana"
    ana = await login(live, "Ana")
    status, page = await ana.page(f"/inbox/c/{P1}")
    assert status == 200
    carla = await login(live, "Carla")
    page += (await carla.page(f"/inbox/c/{P1}"))[1]  # she sees "Assumir" (Ana holds it)
    forms = re.findall(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', page, re.S)
    actions = {action for action, _ in forms}
    assert {f"/inbox/c/{P1.replace('@', '%40')}/{a}" for a in FORM_ACTIONS} <= actions
    assert {"/logout", "/inbox/availability"} <= actions
    assert all('name="csrf"' in body for _, body in forms), "a form without a CSRF token"
    sent = len(live.waha.sent)
    for action in sorted(actions):
        for token in ("", "wrong-token"):
            fields = {"text": "oi", "to": "Bia", "appointment_at": "2026-03-10T14:30",
                      "available": "0"}  # fmt: skip
            response = await ana.post(action, csrf=token, **fields)
            assert response.status == 403, (action, token)
    await live.settle()
    assert len(live.waha.sent) == sent
    assert live.engine.state_of(P1)["status"] == "waiting_human"
    assert holder(s, P1) == "Ana"
    assert (await ana.page("/inbox"))[0] == 200  # logout was refused too
    assert s.workspace.accounts.by_name("Ana").available  # type: ignore[union-attr]


async def test_no_token_in_any_url(make_live: MakeLive, login: Login) -> None:
    s = await staffed(make_live)
    live = s.live
    await hand_off(s, P1, URGENT)
    for path in ("/staff/conversations", "/dashboard", "/inbox", f"/staff/conversations/{P1}"):
        async with live.http.get(live.url(f"{path}?token={STAFF_TOKEN}"), headers=ADMIN) as r:
            assert r.status == 400, path
            assert "URL" in await r.text()
    async with live.http.get(live.url("/staff/conversations"), headers=ADMIN) as r:
        assert r.status == 200  # the shared token still works, as an administrator, in a header
    carla = await login(live, "Carla")
    cookie = next(c.value for c in carla.http.cookie_jar if c.key == "clinicflow_session")
    pages = [(await carla.page(p))[1] for p in ("/inbox", f"/inbox/c/{P1}", "/inbox/queue")]
    async with carla.http.get(live.url("/dashboard")) as r:
        assert r.status == 200  # an administrator's session opens the dashboard
        pages.append(await r.text())
    async with carla.http.get(live.url("/inbox/static/inbox.js")) as r:
        pages.append(await r.text())
    for text in pages:
        urls = re.findall(r'(?:href|src|action)="([^"]*)"', text)
        urls += re.findall(r"(?:fetch|EventSource|assign)\(([^)]*)\)", text)
        assert urls
        for url in urls:
            assert "token" not in url.lower() and cookie not in url and carla.csrf not in url
        assert STAFF_TOKEN not in text and cookie not in text
    ana = await login(live, "Ana")
    async with ana.http.get(live.url("/dashboard")) as r:
        assert r.status == 403  # the dashboard is for administrators


# -- who sees what ----------------------------------------------------------------------------


async def test_a_secretary_cannot_read_or_act_on_anothers_conversation(
    make_live: MakeLive, login: Login
) -> None:
    s = await staffed(make_live)
    live = s.live
    await hand_off(s, P1)
    await hand_off(s, P2)
    assert (holder(s, P1), holder(s, P2)) == ("Ana", "Bia")  # the fewest open conversations
    ana = await login(live, "Ana")
    status, queue = await ana.page("/inbox")
    assert P1 in queue and P2 not in queue
    status, page = await ana.page(f"/inbox/c/{P2}")
    assert status == 403 and "está com Bia" in page and "Paciente" not in page
    async with ana.http.get(live.url(f"/inbox/c/{P2}/live")) as r:
        assert r.status == 403
    await ana.page("/inbox")  # a fresh CSRF token of her own
    sent = len(live.waha.sent)
    for action in FORM_ACTIONS:
        fields = {"text": "oi", "to": "Ana", "appointment_at": "2026-03-10T14:30"}
        response = await ana.post(f"/inbox/c/{P2}/{action}", **fields)
        assert response.status == 403, action
    # … nor through the API with her personal token.
    token = s.workspace.accounts.issue_token("Ana", "teste")
    mine = {"Authorization": f"Bearer {token}"}
    async with live.http.get(live.url("/staff/conversations?status=all"), headers=mine) as r:
        listed = [c["chat_id"] for c in (await r.json())["conversations"]]
    assert P1 in listed and P2 not in listed
    async with live.http.get(live.url(f"/staff/conversations/{P2}"), headers=mine) as r:
        assert r.status == 403
    for action in FORM_ACTIONS:
        body = {"text": "oi", "to": "Ana"}
        url = live.url(f"/staff/conversations/{P2}/{action}")
        async with live.http.post(url, json=body, headers=mine) as r:
            assert r.status == 403, action
    await live.settle()
    assert len(live.waha.sent) == sent
    assert live.engine.state_of(P2)["status"] == "waiting_human" and holder(s, P2) == "Bia"
    # The administrator sees both; the API reply goes out as Carla's.
    carla = s.workspace.accounts.issue_token("Carla")
    admin = {"Authorization": f"Bearer {carla}"}
    async with live.http.get(live.url(f"/staff/conversations/{P2}"), headers=admin) as r:
        assert r.status == 200 and (await r.json())["assigned_to"] == "Bia"
    url = live.url(f"/staff/conversations/{P2}/reply")
    async with live.http.post(url, json={"text": "Oi, aqui é a Carla"}, headers=admin) as r:
        assert r.status == 200 and (await r.json())["by"] == "Carla"
    await live.settle()
    assert live.sent_to(P2)[-1] == "Oi, aqui é a Carla"
    assert live.engine.state_of(P2)["status"] == "human"


# -- assignment ---------------------------------------------------------------------------------


async def test_assignment_duty_claim_transfer_release(make_live: MakeLive, login: Login) -> None:
    s = await staffed(make_live)
    live = s.live
    await hand_off(s, P1)
    assert holder(s, P1) == "Ana"
    # Her notice goes to her alone; nobody else's phone hears of it.
    assert any("Para você, Ana" in t for t in live.sent_to(ANA))
    assert not live.sent_to(BIA) and not live.sent_to(STAFF_PHONE)
    ana = await login(live, "Ana")
    await ana.page("/inbox")
    assert (await ana.post("/inbox/availability", available="0")).status == 303
    await hand_off(s, P2)
    assert holder(s, P2) == "Bia"  # Ana is not on duty
    await ana.page("/inbox")
    await ana.post("/inbox/availability", available="1")
    # Closed (Monday 22:00 in São Paulo): nobody on duty, the notice goes to everyone, held.
    clock(s).set(datetime(2026, 3, 3, 1, 0, tzinfo=UTC))
    await hand_off(s, P3, closed=True)
    assert holder(s, P3) is None
    held = live.runtime.conn.execute(
        "SELECT chat_id FROM outbox WHERE kind = 'handoff_notice' AND hold_until > 0"
    ).fetchall()
    assert {r[0] for r in held} >= {ANA, BIA, STAFF_PHONE}
    # Anyone may claim a queued conversation; then it is hers alone.
    assert (await ana.page("/inbox"))[0] == 303  # 13 hours later her session has expired
    ana = await login(live, "Ana")
    await ana.page(f"/inbox/c/{P3}")
    response = await ana.post(f"/inbox/c/{P3}/claim")
    assert response.status == 303 and response.headers["Location"].endswith("?ok=claim")
    assert holder(s, P3) == "Ana"
    bia = await login(live, "Bia")
    assert (await bia.page(f"/inbox/c/{P3}"))[0] == 403
    await ana.page(f"/inbox/c/{P3}")
    response = await ana.post(f"/inbox/c/{P3}/transfer", to="Bia")
    assert response.status == 303 and holder(s, P3) == "Bia"
    # Her notice leaves now, ahead of the ones held for the opening.
    await until(lambda: any("Ana passou para você" in t for t in live.sent_to(BIA)))
    await bia.page(f"/inbox/c/{P3}")
    assert (await bia.post(f"/inbox/c/{P3}/release")).status == 303
    assert holder(s, P3) is None and (await ana.page(f"/inbox/c/{P3}"))[0] == 200
    actions = [(a.actor, a.action) for a in s.workspace.desk.audit.for_chat(P3)]
    assert actions == [("Ana", "claimed"), ("Ana", "transferred"), ("Bia", "released")]


async def test_an_unclaimed_urgent_handoff_is_noticed_again_to_everyone(
    make_live: MakeLive,
) -> None:
    s = await staffed(make_live)
    live = s.live
    await hand_off(s, P1, URGENT)
    assert holder(s, P1) == "Ana"
    assert await renotify(live.app) == 0  # not yet
    clock(s).advance(timedelta(minutes=6))
    assert await renotify(live.app) == 4  # Ana, Bia and clinic.yaml's two phones
    await live.settle()
    for phone in (ANA, BIA, STAFF_PHONE, "5511990000002@c.us"):
        assert "URGENTE sem resposta há 6 min" in live.sent_to(phone)[-1]
    clock(s).advance(timedelta(minutes=6))
    assert await renotify(live.app) == 0  # once
    # An urgent hand-off she answers is not noticed again.
    await hand_off(s, P2, URGENT)
    assert holder(s, P2) == "Bia"
    url = live.url(f"/staff/conversations/{P2}/reply")
    token = s.workspace.accounts.issue_token("Bia")
    async with live.http.post(url, json={"text": "Estou aqui"},
                              headers={"Authorization": f"Bearer {token}"}) as r:  # fmt: skip
        assert r.status == 200
    clock(s).advance(timedelta(minutes=10))
    assert await renotify(live.app) == 0


async def test_whatsapp_commands_act_as_the_person_who_sent_them(make_live: MakeLive) -> None:
    s = await staffed(make_live)
    live = s.live
    await hand_off(s, P1)
    await hand_off(s, P2)
    assert (holder(s, P1), holder(s, P2)) == ("Ana", "Bia")
    await live.say(ANA, "#devolver " + P2.split("@")[0])
    await live.settle()
    assert "está com Bia" in live.sent_to(ANA)[-1]
    assert live.engine.state_of(P2)["status"] == "waiting_human"
    await live.say(ANA, "#agendado " + P1.split("@")[0])
    await live.settle()
    assert "agendada" in live.sent_to(ANA)[-1]
    action = s.workspace.desk.audit.for_chat(P1)[-1]
    assert (action.actor, action.via, action.action) == ("Ana", "whatsapp", "scheduled")
    # A clinic.yaml phone without an account acts on any conversation, as before.
    await live.say(STAFF_PHONE, "#devolver " + P2.split("@")[0])
    await live.settle()
    assert live.engine.state_of(P2)["status"] == "bot"
    assert s.workspace.desk.audit.for_chat(P2)[-1].actor == "Recepção"


async def test_report_gains_response_time_per_person_and_appointments(
    make_live: MakeLive, login: Login
) -> None:
    s = await staffed(make_live)
    live = s.live
    await hand_off(s, P1)
    await hand_off(s, P2)
    clock(s).advance(timedelta(minutes=2))
    ana = await login(live, "Ana")
    await ana.page(f"/inbox/c/{P1}")
    assert (await ana.post(f"/inbox/c/{P1}/reply", text="Oi! Aqui é a Ana")).status == 303
    clock(s).advance(timedelta(minutes=3))
    bia = await login(live, "Bia")
    await bia.page(f"/inbox/c/{P2}")
    response = await bia.post(f"/inbox/c/{P2}/scheduled", appointment_at="2026-03-10T14:30")
    assert response.status == 303
    await live.settle()
    lead = live.engine.store.query("SELECT status, appointment_at FROM leads WHERE chat_id = ?",
                                   (P2,))[0]  # fmt: skip
    assert lead == {"status": "scheduled", "appointment_at": "2026-03-10T17:30:00.000+00:00"}
    figures = report(live.engine.store, since=None, until=None, script=None, campaign=None,
                     catalog=live.engine.catalog, now=clock(s).now()).as_dict()  # fmt: skip
    by_name = {r["name"]: r for r in figures["human_response_by_staff"]}
    assert by_name["Ana"]["count"] == 1 and by_name["Ana"]["median_s"] == 120.0
    assert by_name["Bia"]["median_s"] == 300.0
    assert figures["appointments"] == {"count": 1, "by_day": {"2026-03-10": 1}}
