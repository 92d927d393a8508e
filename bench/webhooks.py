"""Benchmark: the runner end to end, WAHA webhooks in to ``sendText`` out, on loopback.

Starts the fake WAHA in this process and the runner (``python -m clinicflow.runner``) in a
subprocess,
plays many concurrent patient chats (each chat waits for its previous message to be
processed before sending the next, like a person), and prints one JSON line:

    messages_per_s       inbound messages fully handled per second (first post → last send)
    ack_p50_ms/p99_ms    webhook POST → 200, measured by the client
    send_p50_ms/p99_ms   webhook POST → the reply's sendText accepted (outbox ``sent_at``)
    engine_turns_per_s   the same dialogues through ``Engine.handle`` alone, in this process
    ratio                messages_per_s / engine_turns_per_s
    disk_kb_per_message  bytes the runner and its workers wrote to disk (/proc/<pid>/io
                         ``write_bytes``) per inbound message, KB

    busy_*               the same run with a process spinning on one core (--busy)
    busy_ratio           busy messages_per_s / quiet messages_per_s

The clinic of the bench is open every day at every hour (a copy of the bundled catalog), so
no hand-off notice waits for the opening and the bench runs at any hour.

    backend              sqlite, or postgresql with --database-url (the runner's tables in a
                         new schema of that database; the engine-alone reference stays on
                         SQLite in this process)
    commits_per_message  PostgreSQL only: transactions committed in the database during the
                         run (pg_stat_database.xact_commit, every client) per inbound message
    rows_written_per_message  PostgreSQL only: rows inserted, updated or deleted per message
                         (pg_stat_database tup_*)
    wal_kb_per_message   PostgreSQL only: WAL the cluster wrote per message (pg_stat_wal), KB;
                         disk_kb_per_message then counts only the runners' own files (spool,
                         index), the server's writes are not theirs

    side_by_side         with --side-by-side: the figures above for SQLite with 1 runner and
                         PostgreSQL with 1 and 2 runners, measured one after the other in
                         the same run (keys sqlite_1, postgresql_1, postgresql_2)

Usage: python bench/webhooks.py [--chats 60] [--engine-conversations 60] [--workers N] [--busy]
                                [--database-url postgresql://… [--runners 2] [--side-by-side]]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from turns import DIALOGUES  # noqa: E402

from clinicflow.database import DatabaseUrl, connect, is_postgres, resolve  # noqa: E402
from clinicflow.testing.fake_waha import FakeWaha  # noqa: E402

API_KEY = "bench-key"


def open_all_hours(catalog: Path) -> Path:
    """The bundled catalog, open every day at every hour with no holidays: a hand-off notice
    is never held for the opening, so the bench settles at any hour of any day."""
    from clinicflow.loader import bundled_catalog_path

    shutil.copytree(bundled_catalog_path(), catalog, ignore=shutil.ignore_patterns("__*"))
    clinic = catalog / "clinic.yaml"
    text = clinic.read_text("utf-8")
    text = re.sub(
        r'(\n    (?:seg|ter|qua|qui|sex|sab|dom): )("[^"]*"|fechado)', r'\1"00:00-23:59"', text
    )
    text = re.sub(r"\n  (country|subdivision|optional_holidays): [^\n]*", "", text)
    text = re.sub(r'\n  closures:\n(    - "[^"]*"\n)+', "\n", text)
    clinic.write_text(text, "utf-8")
    from clinicflow.loader import load_catalog

    hours = load_catalog(catalog).clinic.hours
    assert all(hours.weekly) and hours.country is None, "the bench catalog must be always open"
    return catalog


def engine_alone(conversations: int, data: Path, catalog: Path) -> float:
    """Turns per second of the engine alone over the same dialogues."""
    from clinicflow.engine import Engine

    engine = Engine.from_catalog(catalog, data_dir=data)
    try:
        engine.handle("warmup@c.us", "oi")
        turns = 0
        began = time.perf_counter()
        for n in range(conversations):
            for text in DIALOGUES[n % len(DIALOGUES)]:
                engine.handle(f"55118{n:08d}@c.us", text)
                turns += 1
        return turns / (time.perf_counter() - began)
    finally:
        engine.close_resources()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def family(pid: int) -> set[int]:
    """``pid`` and every live descendant (the runner and its engine workers), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    members, grew = {pid}, True
    while grew:
        more = {child for child, parent in parents.items() if parent in members} - members
        members |= more
        grew = bool(more)
    return members


def proc_sum(pids: set[int], file: str, key: str) -> int:
    """The sum of one ``key: value`` field of /proc/<pid>/<file> over ``pids``."""
    total = 0
    for pid in pids:
        try:
            text = Path(f"/proc/{pid}/{file}").read_text()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in text.splitlines() if line.startswith(key))
    return total


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))], 2)


def fresh_schema(url: str) -> str:
    """``url`` with its tables in a new schema (a bench never meets an earlier run's chats);
    other ``options`` of the URL (``-csynchronous_commit=off``...) are kept."""
    import psycopg

    schema = f"bench_{int(time.time() * 1000)}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = " ".join([v for k, v in query if k == "options"] + [f"-csearch_path={schema}"])
    query = [(k, v) for k, v in query if k != "options"] + [("options", options)]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _pg_writes(db: Any) -> tuple[int, int, int] | None:
    """PostgreSQL's own write counters: (transactions committed in this database, rows
    inserted/updated/deleted in it, WAL bytes of the whole cluster); None on SQLite."""
    if not is_postgres(db):
        return None
    commits, rows = db.execute(
        "SELECT xact_commit, tup_inserted + tup_updated + tup_deleted "
        "FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()
    wal = db.execute("SELECT wal_bytes FROM pg_stat_wal").fetchone()[0]
    return int(commits), int(rows), int(wal)


async def run_runner(
    chats: int, data: Path, log: Path, catalog: Path, workers: int | None,
    database_url: str | None = None, runners: int = 1,
) -> dict[str, float]:  # fmt: skip
    ports = [_free_port() for _ in range(runners)]
    hooks = [f"http://127.0.0.1:{p}/webhooks/waha" for p in ports]
    spread = itertools.count()  # webhooks round-robin over the runners, like a balancer
    procs: list[subprocess.Popen[bytes]] = []
    async with FakeWaha(api_key=API_KEY) as waha:
        for index, port in enumerate(ports):
            own = data if index == 0 else data.with_name(f"{data.name}-{index}")
            if index:
                shutil.copytree(data, own)  # the index and model; its own lock and spool
            env = dict(os.environ)
            env.update(
                WAHA_URL=waha.url,
                WAHA_API_KEY=API_KEY,
                CLINICFLOW_DATA=str(own),
                CLINICFLOW_PORT=str(port),
                CLINICFLOW_BURST_QUIET="0",
                CLINICFLOW_TYPING_DELAY_MAX="0",
                CLINICFLOW_CATALOG=str(catalog),
            )
            if workers is not None:
                env["CLINICFLOW_WORKERS"] = str(workers)
            env.pop("CLINICFLOW_DATABASE_URL", None)
            if database_url:
                env["CLINICFLOW_DATABASE_URL"] = database_url
            with log.open("ab") as out:
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "clinicflow.runner"],
                    env=env, cwd=ROOT, stdout=out, stderr=out,
                ))  # fmt: skip
        try:
            async with aiohttp.ClientSession() as http:
                for port in ports:
                    await _wait_health(http, port)
                warm = waha.webhook("message", waha.text_message("5511900000000@c.us", "oi"))
                await _post(http, hooks[0], warm.body, warm.headers)
                db = connect(resolve(data, database_url))
                await _wait_done(db, 1)
                pg_before = _pg_writes(db)
                sent_at: dict[str, float] = {}
                acks: list[float] = []
                done: dict[str, asyncio.Event] = {}

                async def chat(n: int) -> None:
                    chat_id = f"55119{n:08d}@c.us"
                    for text in DIALOGUES[n % len(DIALOGUES)]:
                        request = waha.webhook("message", waha.text_message(chat_id, text))
                        msg_id = request.envelope["payload"]["id"]
                        done[msg_id] = asyncio.Event()
                        sent_at[msg_id] = time.time()
                        t0 = time.perf_counter()
                        hook = hooks[next(spread) % len(hooks)]
                        status = await _post(http, hook, request.body, request.headers)
                        acks.append((time.perf_counter() - t0) * 1000)
                        assert status == 200, status
                        await done[msg_id].wait()

                pids = set().union(*(family(proc.pid) for proc in procs))
                written = proc_sum(pids, "io", "write_bytes:")
                began = time.time()
                watcher = asyncio.create_task(_watch(db, done))
                await asyncio.gather(*[chat(n) for n in range(chats)])
                watcher.cancel()
                for port in ports:
                    await _wait_health(http, port, settled=True)
                ended = time.time()
                written = proc_sum(pids, "io", "write_bytes:") - written
                rows = db.execute(
                    "SELECT batch_id, MIN(sent_at), MAX(sent_at) FROM outbox "
                    "WHERE kind = 'reply' AND status = 'sent' GROUP BY batch_id"
                ).fetchall()
                db.close()
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
    # Read after the runners stopped: a backend flushes its statistics when it exits (an idle
    # one only every few seconds), so the counters then hold everything the runners wrote.
    pg_after = None
    if pg_before is not None:
        with contextlib.closing(connect(resolve(data, database_url))) as after:
            pg_after = _pg_writes(after)
    latencies = [(first - sent_at[b]) * 1000 for b, first, _ in rows if b in sent_at]
    last = max(last for b, _, last in rows if b in sent_at)
    extra: dict[str, float] = {}
    if pg_before is not None and pg_after is not None:
        commits, rows_written, wal = (b - a for a, b in zip(pg_before, pg_after, strict=True))
        extra["commits_per_message"] = round(commits / len(sent_at), 1)
        extra["rows_written_per_message"] = round(rows_written / len(sent_at), 1)
        extra["wal_kb_per_message"] = round(wal / 1024 / len(sent_at), 1)
    return {
        **extra,
        "messages": len(sent_at),
        "messages_per_s": round(len(sent_at) / (max(last, ended) - began), 1),
        "ack_p50_ms": _pct(acks, 0.5),
        "ack_p99_ms": _pct(acks, 0.99),
        "send_p50_ms": _pct(latencies, 0.5),
        "send_p99_ms": _pct(latencies, 0.99),
        "sent_texts": len(waha.sent),
        "disk_kb_per_message": round(written / 1024 / len(sent_at), 1),
    }


async def _post(http: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]) -> int:
    async with http.post(url, data=body, headers=headers) as response:
        await response.read()
        return response.status


async def _wait_health(http: aiohttp.ClientSession, port: int, settled: bool = False) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            async with http.get(f"http://127.0.0.1:{port}/health") as r:
                body = await r.json()
                if r.status == 200 and (
                    not settled or body["outbox_depth"] == body["inbox_pending"] == 0
                ):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise RuntimeError("runner not healthy")


async def _wait_done(db: Any, n: int) -> None:
    while db.execute("SELECT COUNT(*) FROM inbox WHERE status = 'done'").fetchone()[0] < n:
        await asyncio.sleep(0.05)


async def _watch(db: Any, done: dict[str, asyncio.Event]) -> None:
    """One poller for every chat: set the event of each message the runner finished."""
    while True:
        waiting = [m for m, event in done.items() if not event.is_set()]
        for start in range(0, len(waiting), 500):
            chunk = waiting[start : start + 500]
            marks = ",".join("?" for _ in chunk)
            for (message_id,) in db.execute(
                f"SELECT message_id FROM inbox WHERE status IN ('done', 'error') "
                f"AND message_id IN ({marks})",
                chunk,
            ).fetchall():
                done[message_id].set()
        await asyncio.sleep(0.005)


BUSY = "while True: pass"


def busy_neighbour() -> subprocess.Popen[bytes]:
    """A process spinning on one core (pinned to CPU 0 where the OS allows it)."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY])
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(proc.pid, {0})
    return proc


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chats", type=int, default=60)
    parser.add_argument("--engine-conversations", type=int, default=60)
    parser.add_argument("--workers", type=int, default=None, help="CLINICFLOW_WORKERS")
    parser.add_argument(
        "--busy", action="store_true", help="also run with a busy process pinned to one core"
    )
    parser.add_argument(
        "--database-url", default=None, help="postgresql://… (default: SQLite in the data dir)"
    )
    parser.add_argument(
        "--runners", type=int, default=1, help="runner processes (more than 1: PostgreSQL)"
    )
    parser.add_argument(
        "--side-by-side", action="store_true",
        help="with --database-url: SQLite with 1 runner, PostgreSQL with 1 and with --runners "
        "(default 2) runners, one after the other in this run, one JSON line",
    )  # fmt: skip
    args = parser.parse_args()
    if args.database_url and not DatabaseUrl(args.database_url).is_postgres:
        parser.error("--database-url takes a postgresql:// URL")
    if args.runners > 1 and not args.database_url:
        parser.error("several --runners share one PostgreSQL: give --database-url")
    if args.side_by_side and (not args.database_url or args.busy):
        parser.error("--side-by-side needs --database-url (and runs without --busy)")
    tmp = Path(tempfile.mkdtemp(prefix="clinicflow-bench-webhooks-"))
    load = os.getloadavg()[0]
    line: dict[str, Any] = {"bench": "webhooks", "chats": args.chats,
                            "workers": args.workers or "default"}  # fmt: skip
    try:
        catalog = open_all_hours(tmp / "catalog")
        engine_rate = engine_alone(args.engine_conversations, tmp / "engine", catalog)
        if args.side_by_side:
            several = max(args.runners, 2)
            plan = [("sqlite_1", None, 1, False), ("postgresql_1", args.database_url, 1, False),
                    (f"postgresql_{several}", args.database_url, several, False)]  # fmt: skip
        else:
            plan = [("quiet", args.database_url, args.runners, False)]
            plan += [("busy", args.database_url, args.runners, True)] if args.busy else []
        runs: dict[str, dict[str, float]] = {}
        for name, url, runners, busy in plan:
            data = tmp / f"runner-{name}"
            shutil.copytree(tmp / "engine", data)  # reuse the built index and model
            for suffix in ("", "-wal", "-shm"):
                Path(str(data / "clinicflow.db") + suffix).unlink(missing_ok=True)
            neighbour = busy_neighbour() if busy else None
            try:
                schema_url = fresh_schema(url) if url else None
                got = asyncio.run(run_runner(args.chats, data, tmp / "runner.log", catalog,
                                             args.workers, schema_url, runners))  # fmt: skip
            finally:
                if neighbour is not None:
                    neighbour.kill()
                    neighbour.wait()
            got["ratio"] = round(got["messages_per_s"] / engine_rate, 2)
            runs[name] = got
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    line["engine_turns_per_s"] = round(engine_rate, 1)
    if args.side_by_side:
        line["side_by_side"] = runs
    else:
        line["backend"] = "postgresql" if args.database_url else "sqlite"
        line["runners"] = args.runners
        line.update(runs["quiet"])
        if "busy" in runs:
            busy_run = runs["busy"]
            line.update({f"busy_{k}": v for k, v in busy_run.items() if k != "sent_texts"})
            line["busy_ratio"] = round(
                busy_run["messages_per_s"] / runs["quiet"]["messages_per_s"], 2
            )
    line["load_1m"] = round(load, 1)
    print(json.dumps(line))


if __name__ == "__main__":
    main()
