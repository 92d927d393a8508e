# ruff: noqa: F811 - pytest fixtures are imported from metrics_demo by name
"""The dashboard: served by aiohttp, opened in headless Chromium, numbers equal to the report.

Chromium is driven through the DevTools protocol (aiohttp's websocket client): console
messages, log entries and exceptions are collected while the page loads, then the numbers
(``data-metric`` elements) are read from the rendered DOM and compared with
``clinicflow report --json`` for the same period. Skipped when ``chromium`` is not installed.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from browser_harness import CHROMIUM, DevTools, chromium
from click.testing import CliRunner
from metrics_demo import demo  # noqa: F401 - fixture

from clinicflow.cli import main
from clinicflow.dashboard import MAX_STATES, add_dashboard_routes, render_dashboard
from clinicflow.loader import load_catalog
from clinicflow.metrics import handoff_queue, report
from clinicflow.storage import Store

TOKEN = "staff-token-123"
CATALOG = load_catalog(None)
PERIOD = "since=2026-03-01&until=2026-03-31"


@pytest.fixture
async def server(demo: tuple[Path, Any]) -> AsyncIterator[str]:
    store = Store(demo[0])
    app = web.Application()
    add_dashboard_routes(
        app, get_store=lambda: store, get_catalog=lambda: CATALOG, staff_token=TOKEN
    )
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()
    store.close()


def _path(tree: Any, key: str) -> Any:
    for part in key.split("."):
        tree = tree[int(part)] if isinstance(tree, list) else tree[part]
    return tree


def _shown(text: str, kind: str) -> float | None:
    """The number a reader sees, parsed from the pt-BR text (independent of the formatter)."""
    text = text.strip()
    if text == "—":
        return None

    def number(t: str) -> float:
        return float(t.replace(".", "").replace(",", "."))

    if kind == "pct":
        return number(text.removesuffix("%")) / 100
    if kind == "money":
        return number(text.removeprefix("R$ "))
    if kind == "duration":
        value, unit = text.split(" ")
        return number(value) * {"s": 1, "min": 60, "h": 3600, "dias": 86400}[unit]
    return number(text)


_TOLERANCE = {"int": 0.5, "dec": 0.005, "pct": 0.0005, "money": 0.005}


def _close(shown: float | None, value: Any, kind: str) -> bool:
    if shown is None or value is None:
        return shown is None and value is None
    if kind == "duration":
        unit = 1 if value < 60 else 60 if value < 3600 else 3600 if value < 172800 else 86400
        return abs(shown - value) <= 0.05 * unit + 0.5
    return abs(shown - value) <= _TOLERANCE[kind] + 1e-9


async def test_token_is_required(server: str) -> None:
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"Authorization": "Bearer x"}, {"Authorization": TOKEN}):
            async with http.get(f"{server}/dashboard", headers=headers) as response:
                assert response.status == 401
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
        # A token in the URL ends up in logs and history: refused, right or wrong, and said why.
        for query in ("?token=wrong", f"?token={TOKEN}"):
            async with http.get(f"{server}/dashboard{query}") as response:
                assert response.status == 400
                assert "URL" in await response.text()
        bearer = {"Authorization": f"Bearer {TOKEN}"}
        async with http.get(f"{server}/dashboard?{PERIOD}", headers=bearer) as response:
            assert response.status == 200
            assert response.content_type == "text/html"
            assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            page = await response.text()
        async with http.get(f"{server}/dashboard?since=ontem", headers=bearer) as response:
            assert response.status == 400
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert 'lang="pt-BR"' in page and "Funil" in page and "Campanhas" in page


async def test_no_token_configured_means_no_dashboard(aiohttp_client: Any) -> None:
    app = web.Application()
    add_dashboard_routes(
        app, get_store=lambda: Store("/nonexistent"), get_catalog=lambda: CATALOG, staff_token=None
    )
    client = await aiohttp_client(app)
    for header in ("", "Bearer ", "Bearer None"):
        response = await client.get("/dashboard", headers={"Authorization": header})
        assert response.status == 401


def test_render_without_a_browser(demo: tuple[Path, Any]) -> None:
    data, ledger = demo
    store = Store(data)
    try:
        figures = report(
            store, since=None, until=None, script=None, campaign=None, catalog=CATALOG,
            now=ledger.now,
        )  # fmt: skip
        queue = handoff_queue(store, now=ledger.now)
    finally:
        store.close()
    page = render_dashboard(figures, queue, title="Clínica")
    tree = figures.as_dict()
    keys = re.findall(r'data-metric="([^"]+)" data-kind="[a-z]+" data-value="([^"]*)"', page)
    assert len(keys) > 60
    for key, raw in keys:
        value = json.loads(raw.replace("&quot;", '"'))
        if key.startswith("queue."):
            assert key == "queue.length" or _path([q.as_dict() for q in queue], key[6:]) == value
        else:
            assert _path(tree, key) == value, key
    assert {"per_day.2026-03-02", "funnel.scheduled.count", "campaigns.ig_diu.cost_per_lead"} <= {
        k for k, _ in keys
    }


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
async def test_page_in_chromium_matches_report_json(
    server: str, demo: tuple[Path, Any], tmp_path: Path
) -> None:
    data, _ = demo
    cli = CliRunner().invoke(
        main,
        ["report", "--json", "--data", str(data), "--since", "2026-03-01", "--until", "2026-03-31"],
    )
    assert cli.exit_code == 0, cli.output
    expected = json.loads(cli.output)
    url = f"{server}/dashboard?{PERIOD}"
    async with chromium(tmp_path / "profile") as devtools, aiohttp.ClientSession() as http:
        async with http.get(f"{devtools}/json/list") as response:
            targets = await response.json()
        page = next(t for t in targets if t["type"] == "page")
        async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            cdp = DevTools(ws)
            for domain in ("Runtime", "Log", "Page", "Network"):
                await cdp.send(f"{domain}.enable")
            await cdp.send(
                "Emulation.setDeviceMetricsOverride",
                width=430, height=900, deviceScaleFactor=2, mobile=True,
            )  # fmt: skip
            # The token goes in a header, never in the URL.
            await cdp.send(
                "Network.setExtraHTTPHeaders", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            await cdp.send("Page.navigate", url=url)
            await cdp.wait_for("Page.loadEventFired")
            found = await cdp.send(
                "Runtime.evaluate",
                expression="JSON.stringify({width: document.documentElement.scrollWidth, "
                "title: document.title, metrics: Array.from(document.querySelectorAll("
                "'[data-metric]')).map(e => ({key: e.dataset.metric, value: e.dataset.value, "
                "kind: e.dataset.kind, tag: e.tagName.toLowerCase(), text: e.textContent}))})",
                returnByValue=True,
            )
            shot = await cdp.send(
                "Page.captureScreenshot", format="png", captureBeyondViewport=True
            )
            await asyncio.sleep(0.2)  # late console messages
            problems = cdp.problems()
            cdp.reader.cancel()
    assert problems == []
    dom = json.loads(found["result"]["value"])
    assert dom["width"] <= 430, "the page scrolls sideways on a phone"
    assert "Clínica" in dom["title"]
    png = base64.b64decode(shot["data"])
    assert png.startswith(b"\x89PNG")
    (tmp_path / "dashboard.png").write_bytes(png)
    if os.environ.get("CLINICFLOW_DASHBOARD_SCREENSHOT"):
        Path(os.environ["CLINICFLOW_DASHBOARD_SCREENSHOT"]).write_bytes(png)

    store = Store(data)
    try:
        queue = [q.as_dict() for q in handoff_queue(store, now=datetime.now(UTC))]
    finally:
        store.close()
    metrics = dom["metrics"]
    assert len(metrics) > 60
    seen = set()
    for m in metrics:
        value = json.loads(m["value"])
        key = m["key"]
        seen.add(key)
        if key == "queue.length":
            assert value == len(queue)
        elif key.startswith("queue."):
            assert abs(_path(queue, key[6:]) - value) < 120, key  # ages move with the clock
        else:
            assert _path(expected, key) == value, key
        if m["tag"] != "rect":  # bars carry their count in data-value and a tooltip
            assert _close(_shown(m["text"], m["kind"]), value, m["kind"]), m
    assert {f"per_day.{day}" for day in expected["per_day"]} <= seen
    assert {f"funnel.{step}.count" for step in expected["funnel"]} <= seen
    assert {f"campaigns.{c}.cost_per_scheduled" for c in expected["campaigns"]} <= seen
    stops = min(len(expected["drop_off_by_state"]), MAX_STATES)
    assert stops > 10 and {f"drop_off_by_state.{i}.count" for i in range(stops)} <= seen
