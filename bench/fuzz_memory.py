"""Benchmark: the runner's memory under rounds of fuzzed webhooks.

Starts the fake WAHA in this process and the runner (``python -m clinicflow.runner``, its
engine workers included) in a subprocess on a clinic open at every hour, then posts
``--rounds`` rounds of ``--webhooks`` webhooks each (seeded, so every run posts the same
ones): patient messages from a rotating set of chats (some long, some hostile), malformed
JSON, wrong shapes, unknown events, groups, channels, status broadcasts, ``@lid`` ids,
edits, revokes, reactions, calls, duplicate deliveries and bodies over the size limit. After
each round it waits until the inbox and outbox are empty and reads the resident memory of
the runner and its workers (``/proc/<pid>/status`` VmRSS, summed). Prints one JSON line:

    rounds_rss_mb       RSS after each round, MB (runner + engine workers)
    growth_after_first  (last − first) / first: what the rounds after the first added
    statuses            how the webhooks were answered (HTTP status → count)
    turns               inbound messages the runner handled

Target (issue 14): growth after the first round ≤ 5 %.

Usage: python bench/fuzz_memory.py [--rounds 3] [--webhooks 10000] [--chats 400] [--seed 7]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from webhooks import (  # noqa: E402
    API_KEY,
    _free_port,
    _wait_health,
    family,
    open_all_hours,
    proc_sum,
)

from clinicflow.testing.fake_waha import FakeWaha  # noqa: E402

HMAC_KEY = "bench-hmac"
TEXTS = [
    "oi",
    "quanto custa a consulta?",
    "vcs aceitam unimed",
    "queria saber do DIU",
    "to com muita dor e febre desde ontem",
    "quero marcar",
    "PARE",
    "😀" * 40,
    "<script>alert(1)</script>",
    "'; DROP TABLE inbox; --",
    "a" * 4000,
    "\u202e\u0000\ufeffolá",
    "meu nome é Ana e tenho 45 anos",
    "obrigada, tchau",
]


def _rss_mb(pid: int) -> float:
    """VmRSS of ``pid`` and every descendant, MB."""
    return round(proc_sum(family(pid), "status", "VmRSS:") / 1024, 1)


def _fuzzed(
    waha: FakeWaha, rng: random.Random, chats: int, sent: list[Any]
) -> tuple[bytes, dict[str, str]]:
    """One webhook request (body, headers), as WAHA would POST it or worse."""
    chat = f"55119{rng.randrange(chats):08d}@c.us"
    kind = rng.random()
    text = rng.choice(TEXTS)
    if kind < 0.35:
        request = waha.webhook("message", waha.text_message(chat, text))
        sent.append(request)
        return request.body, request.headers
    if kind < 0.45 and sent:
        request = rng.choice(sent[-200:])  # a duplicate delivery
        return request.body, request.headers
    if kind < 0.52:  # signed, but not WAHA's shape (or not JSON at all)
        body = rng.choice([b"{", b"[]", b"null", b'{"event": 1}', b"\xff\xfe", b""])
        digest = hmac.new(HMAC_KEY.encode(), body, hashlib.sha512).hexdigest()
        return body, {"Content-Type": "application/json", "X-Webhook-Hmac": digest,
                      "X-Webhook-Hmac-Algorithm": "sha512"}  # fmt: skip
    if kind < 0.58:
        request = waha.webhook("message", waha.text_message(chat, text))
        return request.body, {**request.headers, "X-Webhook-Hmac": "00" * 64}
    if kind < 0.62:
        big = waha.webhook("message", waha.text_message(chat, "x" * 400_000))
        return big.body, big.headers
    other = [
        lambda: ("message", waha.group_message("120363000000000000@g.us", text)),
        lambda: ("message", waha.status_message(text)),
        lambda: ("message", waha.newsletter_message(text)),
        lambda: ("message", waha.lid_message(f"2088{rng.randrange(10**11):011d}@lid", text)),
        lambda: ("message.edited", waha.edited_event(chat, sent[-1].envelope["payload"]["id"]
                                                     if sent else "x", text)),
        lambda: ("message.revoked", waha.revoked_event(chat, sent[-1].envelope["payload"]["id"]
                                                       if sent else "x")),
        lambda: ("message.reaction", waha.reaction_event(chat, "false_x@c.us_AB")),
        lambda: ("call.received", waha.call_event(chat)),
        lambda: ("presence.update", {"id": chat, "presences": []}),
        lambda: ("engine.event", {"whatever": [1, 2, 3]}),
    ]  # fmt: skip
    event, payload = rng.choice(other)()
    request = waha.webhook(event, payload)
    return request.body, request.headers


async def _settle(http: aiohttp.ClientSession, port: int) -> None:
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        try:
            async with http.get(f"http://127.0.0.1:{port}/health") as r:
                body = await r.json()
                if body["outbox_depth"] == body["inbox_pending"] == 0:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the runner did not settle")


async def run(args: argparse.Namespace, data: Path, catalog: Path, log: Path) -> dict[str, Any]:
    rng = random.Random(args.seed)
    port = _free_port()
    hook = f"http://127.0.0.1:{port}/webhooks/waha"
    statuses: Counter[int] = Counter()
    rounds: list[float] = []
    async with FakeWaha(api_key=API_KEY, hmac_key=HMAC_KEY) as waha:
        env = dict(os.environ)
        env.update(
            WAHA_URL=waha.url,
            WAHA_API_KEY=API_KEY,
            WAHA_HMAC_KEY=HMAC_KEY,
            CLINICFLOW_DATA=str(data),
            CLINICFLOW_PORT=str(port),
            CLINICFLOW_BURST_QUIET="0",
            CLINICFLOW_TYPING_DELAY_MAX="0",
            CLINICFLOW_CATALOG=str(catalog),
        )
        if args.workers is not None:
            env["CLINICFLOW_WORKERS"] = str(args.workers)
        with log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "clinicflow.runner"], env=env, cwd=ROOT, stdout=out,
                stderr=out,
            )  # fmt: skip
        try:
            async with aiohttp.ClientSession() as http:
                await _wait_health(http, port)
                sent: list[Any] = []
                gate = asyncio.Semaphore(32)

                async def post(body: bytes, headers: dict[str, str]) -> None:
                    async with gate, http.post(hook, data=body, headers=headers) as response:
                        await response.read()
                        statuses[response.status] += 1

                for _ in range(args.rounds):
                    requests = [_fuzzed(waha, rng, args.chats, sent) for _ in range(args.webhooks)]
                    await asyncio.gather(*(post(b, h) for b, h in requests))
                    await _settle(http, port)
                    rounds.append(_rss_mb(proc.pid))
                    sent = sent[-200:]
            db = sqlite3.connect(data / "clinicflow.db")
            turns = db.execute("SELECT COUNT(*) FROM inbox WHERE status = 'done'").fetchone()[0]
            db.close()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return {
        "rounds": args.rounds,
        "webhooks_per_round": args.webhooks,
        "rounds_rss_mb": rounds,
        "growth_after_first": round((rounds[-1] - rounds[0]) / rounds[0], 4),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "turns": turns,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--chats", type=int, default=400)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", type=int, default=None, help="CLINICFLOW_WORKERS")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clinicflow-bench-fuzz-"))
    load = os.getloadavg()[0]
    catalog = open_all_hours(tmp / "catalog")
    result = asyncio.run(run(args, tmp / "data", catalog, tmp / "runner.log"))
    result["load_before"] = round(load, 2)
    result["log"] = str(tmp / "runner.log")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
