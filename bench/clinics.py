"""Benchmark: what one runner process costs per clinic when it serves several (``--clinics``).

For each N in ``--counts`` (default 1, 2, 4) it writes a clinics file of N clinics (copies of
the bundled catalog, open every hour so the bench runs at any hour; each clinic's data dir
seeded with the built index and model, as after a first start), starts
``python -m clinicflow.runner`` on it in a subprocess with the fake WAHA in this process,
waits until every clinic is healthy, then plays ``--chats`` chats per clinic through the shared
``/webhooks/waha`` (each chat waits for its message to be processed before the next, like a
person), and prints one JSON line:

    clinics.<N>.start_s          runner start → every clinic healthy, seconds
    clinics.<N>.pss_idle_mb      proportional set size of the runner and all its engine
                                 workers once healthy (/proc/<pid>/smaps_rollup ``Pss``: shared
                                 pages split between the processes sharing them), MB
    clinics.<N>.pss_mb           the same after the chats
    clinics.<N>.messages_per_s   inbound messages handled per second over all clinics
    pss_per_clinic_mb            (pss_mb at the largest N - at the smallest) / (N difference)

Usage: python bench/clinics.py [--counts 1,2,4] [--chats 10] [--workers N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from turns import DIALOGUES  # noqa: E402
from webhooks import (  # noqa: E402
    API_KEY,
    _free_port,
    _post,
    family,
    open_all_hours,
    proc_sum,
)

from clinicflow.testing.fake_waha import FakeWaha  # noqa: E402


def seed(root: Path, catalog: Path) -> Path:
    """A data dir with the catalog's index and model built (what a clinic has after its
    first start), to copy into each clinic's."""
    from clinicflow.engine import Engine

    Engine.from_catalog(catalog, data_dir=root).close_resources()
    for suffix in ("", "-wal", "-shm"):
        Path(str(root / "clinicflow.db") + suffix).unlink(missing_ok=True)
    return root


async def _healthy(http: aiohttp.ClientSession, port: int, count: int, settled: bool) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            async with http.get(f"http://127.0.0.1:{port}/health") as r:
                body = await r.json()
            clinics = body.get("clinics", {})
            ok = r.status == 200 and len(clinics) == count
            ok = ok and all(c.get("status") == "ok" for c in clinics.values())
            if ok and settled:
                ok = all(c["outbox_depth"] == c["inbox_pending"] == 0 for c in clinics.values())
            if ok:
                return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise RuntimeError("the clinics did not become healthy")


async def run(count: int, chats: int, tmp: Path, catalog: Path, seeded: Path,
              workers: int | None) -> dict[str, float]:  # fmt: skip
    root = tmp / f"n{count}"
    data = root / "data"
    lines = ["clinics:"]
    for index in range(count):
        lines += [f"  c{index}:", f"    session: s{index}", f"    catalog: {catalog}"]
        shutil.copytree(seeded, data / "clinics" / f"c{index}")
    (root / "clinics.yaml").write_text("\n".join(lines) + "\n")
    port = _free_port()
    async with FakeWaha(api_key=API_KEY) as waha:
        for index in range(count):
            waha.sessions[f"s{index}"] = "WORKING"
            waha.session_configs[f"s{index}"] = {"webhooks": []}
        env = dict(os.environ)
        env.pop("CLINICFLOW_DATABASE_URL", None)
        env.update(WAHA_URL=waha.url, WAHA_API_KEY=API_KEY, CLINICFLOW_DATA=str(data),
                   CLINICFLOW_PORT=str(port), CLINICFLOW_BURST_QUIET="0",
                   CLINICFLOW_TYPING_DELAY_MAX="0",
                   CLINICFLOW_CLINICS=str(root / "clinics.yaml"))  # fmt: skip
        if workers is not None:
            env["CLINICFLOW_WORKERS"] = str(workers)
        began = time.monotonic()
        with (root / "runner.log").open("ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "clinicflow.runner"], env=env,
                                    cwd=ROOT, stdout=out, stderr=out)  # fmt: skip
        try:
            async with aiohttp.ClientSession() as http:
                await _healthy(http, port, count, settled=False)
                start_s = time.monotonic() - began
                await asyncio.sleep(2)  # let start-up allocations settle
                pids = family(proc.pid)
                pss_idle = proc_sum(pids, "smaps_rollup", "Pss:") / 1024
                dbs = [
                    sqlite3.connect(data / "clinics" / f"c{i}" / "clinicflow.db")
                    for i in range(count)
                ]
                hook = f"http://127.0.0.1:{port}/webhooks/waha"
                sent = 0

                async def chat(clinic: int, n: int) -> None:
                    nonlocal sent
                    chat_id = f"55119{n:08d}@c.us"
                    for text in DIALOGUES[n % len(DIALOGUES)]:
                        request = waha.webhook("message", waha.text_message(chat_id, text),
                                               session=f"s{clinic}")  # fmt: skip
                        msg_id = request.envelope["payload"]["id"]
                        assert await _post(http, hook, request.body, request.headers) == 200
                        sent += 1
                        while not dbs[clinic].execute(
                            "SELECT 1 FROM inbox WHERE message_id = ? AND status IN "
                            "('done', 'error')", (msg_id,),
                        ).fetchone():  # fmt: skip
                            await asyncio.sleep(0.01)

                t0 = time.monotonic()
                await asyncio.gather(*[chat(c, n) for c in range(count) for n in range(chats)])
                await _healthy(http, port, count, settled=True)
                elapsed = time.monotonic() - t0
                pss = proc_sum(family(proc.pid), "smaps_rollup", "Pss:") / 1024
                for db in dbs:
                    db.close()
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    return {
        "start_s": round(start_s, 1),
        "pss_idle_mb": round(pss_idle, 1),
        "pss_mb": round(pss, 1),
        "messages": sent,
        "messages_per_s": round(sent / elapsed, 1),
        "processes": len(pids),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="1,2,4", help="numbers of clinics, comma-separated")
    parser.add_argument("--chats", type=int, default=10, help="chats per clinic")
    parser.add_argument("--workers", type=int, default=None, help="CLINICFLOW_WORKERS per clinic")
    args = parser.parse_args()
    counts = sorted({int(c) for c in args.counts.split(",")})
    load = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="clinicflow-bench-clinics-"))
    try:
        catalog = open_all_hours(tmp / "catalog")
        seeded = seed(tmp / "seed", catalog)
        figures = {
            str(n): asyncio.run(run(n, args.chats, tmp, catalog, seeded, args.workers))
            for n in counts
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    low, high = counts[0], counts[-1]
    per_clinic = (
        (figures[str(high)]["pss_mb"] - figures[str(low)]["pss_mb"]) / (high - low)
        if high > low
        else None
    )
    line = {"bench": "clinics", "chats_per_clinic": args.chats,
            "workers": args.workers if args.workers is not None else "default",
            "clinics": figures,
            "pss_per_clinic_mb": round(per_clinic, 1) if per_clinic is not None else None,
            "load_1m": round(load, 1)}  # fmt: skip
    print(json.dumps(line))


if __name__ == "__main__":
    main()
