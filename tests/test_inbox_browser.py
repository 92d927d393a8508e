# ruff: noqa: F811 - pytest fixtures are imported from the harnesses by name
"""The inbox in a real headless Chromium, as a secretary uses it on her phone.

Ana logs in, an urgent hand-off appears live (server-sent events) with a notification and a
sound, she opens it, reads the transcript and the brief, replies (the fake WAHA receives her
text as the clinic's message and the bot stays silent), hands back (the bot answers the next
patient message from the step it paused on), and marks a second conversation scheduled.
``CLINICFLOW_INBOX_SCREENSHOT=docs/inbox.png`` keeps the phone-sized screenshot.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from browser_harness import CHROMIUM, DevTools, chromium
from runner_harness import (  # noqa: F401 - fixtures
    MakeLive,
    data_dir,
    embedder,
    make_live,
    prebuilt,
    until,
    waha,
)
from workspace_harness import PASSWORD, staffed

URGENT_CHAT = "5511987650003@c.us"
BOOKING_CHAT = "5511987650004@c.us"
REPLY = "Oi, Irene! Aqui é a Ana, da recepção. Você consegue vir ao pronto-socorro agora?"
WIDTH = 390

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")


class Page:
    """The page target, driven through DevTools."""

    def __init__(self, cdp: DevTools) -> None:
        self.cdp = cdp

    async def js(self, expression: str) -> Any:
        found = await self.cdp.send("Runtime.evaluate", expression=expression,
                                    returnByValue=True, awaitPromise=True)  # fmt: skip
        assert "exceptionDetails" not in found, found
        return found["result"].get("value")

    async def until(self, expression: str, timeout: float = 20.0) -> None:
        """Poll until ``expression`` is true; while a navigation swaps the document it may
        throw (no body yet), which counts as not yet."""
        async with asyncio.timeout(timeout):
            while True:
                found = await self.cdp.send("Runtime.evaluate", returnByValue=True,
                                            expression=f"Boolean({expression})")  # fmt: skip
                if "exceptionDetails" not in found and found["result"].get("value"):
                    return
                await asyncio.sleep(0.1)

    async def go(self, url: str) -> None:
        await self.cdp.send("Page.navigate", url=url)
        await self.until("document.readyState === 'complete'")

    async def submit(self, selector: str, path: str, **values: str) -> None:
        """Fill a form's fields and press its button; wait for the next page at ``path``."""
        fill = "".join(
            f"f.querySelector('[name={name}]').value = {json.dumps(value)};"
            for name, value in values.items()
        )
        await self.js(
            f"(() => {{ const f = document.querySelector({json.dumps(selector)}); {fill} "
            "document.body.dataset.leaving = '1'; f.querySelector('button').click(); })()"
        )
        await self.until(
            f"document.body && !document.body.dataset.leaving "
            f"&& location.pathname === {json.dumps(path)} "
            "&& document.readyState === 'complete'"
        )

    async def text(self, selector: str) -> str:
        return str(await self.js(f"document.querySelector({json.dumps(selector)})?.innerText"))


async def test_a_secretary_works_a_handoff_in_the_browser(
    make_live: MakeLive, tmp_path: Path
) -> None:
    s = await staffed(make_live)
    live = s.live
    s.workspace.accounts.set_available(s.bia.id, False)  # everything goes to Ana
    # A patient books through the secretary (the second conversation) …
    for text in ("Vi o anúncio do DIU e queria saber mais", "Beatriz",
                 "quero falar com a secretária"):  # fmt: skip
        await live.say(BOOKING_CHAT, text)
        await live.settle()
    # … and another is in the menopause script, at the question about her age.
    for text in ("menopausa", "Irene", "1"):
        await live.say(URGENT_CHAT, text)
        await live.settle()
    assert live.engine.state_of(URGENT_CHAT)["state"] == "pergunta_idade"
    base = live.url("/")[:-1]
    flags = ("--autoplay-policy=no-user-gesture-required", "--lang=pt-BR")
    async with chromium(tmp_path / "profile", *flags) as devtools, aiohttp.ClientSession() as http:
        async with http.get(f"{devtools}/json/list") as response:
            target = next(t for t in await response.json() if t["type"] == "page")
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = DevTools(ws)
            for domain in ("Runtime", "Log", "Page"):
                await cdp.send(f"{domain}.enable")
            await cdp.send("Browser.grantPermissions", origin=base, permissions=["notifications"])
            await cdp.send("Emulation.setDeviceMetricsOverride", width=WIDTH, height=844,
                           deviceScaleFactor=2, mobile=True)  # fmt: skip
            page = Page(cdp)

            # Log in as Ana.
            await page.go(f"{base}/inbox")
            assert await page.js("location.pathname") == "/login"
            await page.submit("form", "/inbox", name="Ana", password=PASSWORD)
            await page.until("document.body.dataset.live === '1'")  # events are flowing
            queue = await page.text("#queue")
            assert "Beatriz" in queue and "Irene" not in queue

            # The urgent hand-off appears without reloading, with a notification and a sound.
            await page.js("document.body.dataset.marker = 'same page'")
            await live.say(URGENT_CHAT, "estou com falta de ar")
            await live.settle()
            await page.until(f"document.querySelector('li.urgent[data-chat=\"{URGENT_CHAT}\"]')")
            assert await page.js("document.body.dataset.marker") == "same page"
            first = await page.js("document.querySelector('#queue li').dataset.chat")
            assert first == URGENT_CHAT  # urgent first
            await page.until("window.inboxAlerts.length > 0")
            alert = await page.js("window.inboxAlerts[0]")
            assert alert == {"chat": URGENT_CHAT, "notification": True, "sound": True}

            # Open it: the transcript and the brief.
            await page.js(f"document.querySelector('li[data-chat=\"{URGENT_CHAT}\"] a').click()")
            await page.until("document.querySelector('#transcript')")
            transcript = await page.text("#transcript")
            assert "estou com falta de ar" in transcript and "Irene" in transcript
            assert "Robô" in transcript and "Paciente" in transcript
            brief = await page.text("#brief")
            assert "URGENTE" in brief and "Menopausa" in brief
            assert "Calorões" in await page.text("#fields")  # her name heads the page

            # Reply: the clinic's message goes out, the bot pauses.
            answered = len(live.sent_to(URGENT_CHAT))
            await page.submit("form.reply", f"/inbox/c/{URGENT_CHAT.replace('@', '%40')}",
                              text=REPLY)  # fmt: skip
            await live.settle()
            assert live.sent_to(URGENT_CHAT)[answered:] == [REPLY]
            assert live.engine.state_of(URGENT_CHAT)["status"] == "human"
            await page.until("document.querySelector('#transcript').innerText.includes('Ana, da')")
            await live.say(URGENT_CHAT, "consigo sim, estou indo")
            await live.settle()
            assert live.sent_to(URGENT_CHAT)[answered:] == [REPLY]  # the bot stayed silent
            await page.until("document.querySelector('#transcript').innerText.includes('indo')")
            await page.js("window.scrollTo(0, 0)")
            shot = await cdp.send("Page.captureScreenshot", format="png")  # what a phone shows
            width = await page.js("document.documentElement.scrollWidth")

            # Hand back: the bot resumes the question it paused on, and answers from there.
            await page.submit("#act form[action$='/handback']", "/inbox")
            await live.settle()
            conv = live.engine.state_of(URGENT_CHAT)
            assert (conv["status"], conv["state"]) == ("bot", "pergunta_idade")
            assert "idade" in live.sent_to(URGENT_CHAT)[-1]
            await live.say(URGENT_CHAT, "49")
            await live.settle()
            conv = live.engine.state_of(URGENT_CHAT)
            assert conv["slots"]["idade"] == 49 and conv["state"] == "pergunta_hormonio"

            # Mark the second conversation scheduled, with the appointment's date and time.
            await page.js(f"document.querySelector('li[data-chat=\"{BOOKING_CHAT}\"] a').click()")
            await page.until("document.querySelector('form.scheduled')")
            path = f"/inbox/c/{BOOKING_CHAT.replace('@', '%40')}"
            await page.submit("form.scheduled", path, appointment_at="2026-03-10T14:30")
            assert "Marcada como agendada" in await page.text(".flash")
            assert "consulta em 10/03 14:30" in await page.text("#actions")
            await asyncio.sleep(0.2)  # late console messages
            problems = cdp.problems()
            cdp.reader.cancel()
    assert problems == []
    assert width <= WIDTH, "the page scrolls sideways on a phone"
    lead = live.engine.store.query(
        "SELECT status, appointment_at FROM leads WHERE chat_id = ?", (BOOKING_CHAT,)
    )[0]
    assert lead == {"status": "scheduled", "appointment_at": "2026-03-10T17:30:00.000+00:00"}
    actions = [(a.actor, a.action) for a in s.workspace.desk.audit.for_chat(URGENT_CHAT)]
    assert actions == [("clinicflow", "assigned"), ("Ana", "reply"), ("Ana", "handback")]
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    (tmp_path / "inbox.png").write_bytes(png)
    if os.environ.get("CLINICFLOW_INBOX_SCREENSHOT"):
        Path(os.environ["CLINICFLOW_INBOX_SCREENSHOT"]).write_bytes(png)
