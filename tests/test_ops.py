"""Operations: Prometheus metrics, JSON logs, catalog reload (endpoint and SIGHUP), health,
the data-dir lock and the daily retention job."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import signal
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families
from runner_harness import (  # noqa: F401 - fixtures
    STAFF_TOKEN,
    MakeLive,
    base_config,
    data_dir,
    embedder,
    make_live,
    prebuilt,
    until,
    waha,
)

from clinicflow.backup import in_use
from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.loader import bundled_catalog_path
from clinicflow.privacy import REDACTED
from clinicflow.pseudonyms import Pseudonyms
from clinicflow.runner.app import create_app
from clinicflow.runner.config import ConfigError, RunnerConfig
from clinicflow.runner.keys import RUNTIME
from clinicflow.runner.logs import configure_logging, parse_event_line
from clinicflow.runner.metrics import Metrics, log_event
from clinicflow.runner.ops import install_sighup
from clinicflow.storage import DB_NAME
from clinicflow.testing.fake_waha import FakeWaha

PATIENT = "5511988887777@c.us"
AUTH = {"Authorization": f"Bearer {STAFF_TOKEN}"}

#: Every figure the hand-made /metrics had, and its conventional name now.
RENAMED = {
    "clinicflow_messages_in_total": "clinicflow_messages_in_total",
    "clinicflow_messages_out_total": "clinicflow_messages_out_total",
    "clinicflow_duplicates_dropped_total": "clinicflow_duplicates_dropped_total",
    "clinicflow_webhooks_total": "clinicflow_webhooks_total",
    "clinicflow_turns_total": "clinicflow_turns_total",
    "clinicflow_turn_latency_ms": "clinicflow_turn_duration_seconds",
    "clinicflow_llm_calls_total": "clinicflow_llm_calls_total",
    "clinicflow_handoffs_total": "clinicflow_handoffs_total",
    "clinicflow_send_failures_total": "clinicflow_send_failures_total",
    "clinicflow_takeovers_total": "clinicflow_takeovers_total",
    "clinicflow_outbox_depth": "clinicflow_outbox_depth",
    "clinicflow_inbox_pending": "clinicflow_inbox_pending",
}


# -- metrics --------------------------------------------------------------------------------


async def test_metrics_are_prometheus_with_help_units_and_process(make_live: MakeLive) -> None:
    live = await make_live()
    await live.say(PATIENT, "quero falar com uma atendente")
    await live.settle()
    async with live.http.get(live.url("/metrics")) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        text = await r.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = {s.name for f in families.values() for s in f.samples}
    for old, new in RENAMED.items():
        # A labelled counter with no observation yet has its HELP and TYPE but no sample.
        assert new.removesuffix("_total") in families, f"{old} is gone"
    helps = {m.group(1) for m in re.finditer(r"^# HELP (\S+) ", text, re.M)}
    assert {"clinicflow_turn_duration_seconds", "clinicflow_webhooks_total"} <= helps
    assert "process_resident_memory_bytes" in samples and "process_cpu_seconds_total" in samples
    assert "python_info" in samples
    assert 'clinicflow_turn_duration_seconds_bucket{le="0.005"}' in text
    assert families["clinicflow_turn_duration_seconds"].type == "histogram"
    assert families["clinicflow_webhooks"].type == "counter"
    assert live.runtime.metrics.value("handoffs") >= 1
    assert "ms" not in {name.rsplit("_", 1)[-1] for name in samples if "clinicflow" in name}


def test_metrics_take_new_counters_and_survive_a_failing_gauge() -> None:
    metrics = Metrics({"clinicflow_outbox_depth": lambda: 1 / 0})
    metrics.inc("webhooks", outcome="stored")
    metrics.inc("webhooks", 2, outcome="ignored")
    metrics.inc("something_new", kind="x")
    metrics.observe_turn(7.0)
    assert metrics.value("webhooks") == 3 and metrics.value("webhooks", outcome="ignored") == 2
    text = metrics.render()
    assert 'clinicflow_something_new_total{kind="x"} 1.0' in text
    assert "clinicflow_outbox_depth NaN" in text
    assert "clinicflow_turn_duration_seconds_sum 0.007" in text


# -- logs -----------------------------------------------------------------------------------


@pytest.fixture
def captured() -> Any:
    def use(fmt: str) -> io.StringIO:
        stream = io.StringIO()
        handlers.append(configure_logging(fmt, stream=stream))
        return stream

    handlers: list[logging.Handler] = []
    yield use
    root = logging.getLogger()
    for handler in handlers:
        root.removeHandler(handler)


def test_json_logs_carry_the_same_fields_as_the_text_lines(captured: Any) -> None:
    fields: dict[str, Any] = {
        "chat": Pseudonyms(b"k" * 16)("5511988887777@c.us"),  # callers log pseudonyms
        "intent": "ask_price",
        "replies": 2,
        "ms": 7.5,
        "reason": 'said "oi"\nthen = left',
        "urgent": False,
    }
    # Both formats show what the line shows: control characters escaped (a value never
    # forges a line or hides in the JSON), everything else as given.
    shown = {**fields, "reason": 'said "oi"\\x0athen = left'}
    text = captured("text")
    log_event("turn", **fields)
    line = text.getvalue().strip().split(" INFO ", 1)[1]
    assert "\n" not in line and str(fields["chat"]).startswith("chat-")
    assert parse_event_line(line) == {"event": "turn", **shown}
    as_json = captured("json")
    log_event("turn", **fields)
    record = json.loads(as_json.getvalue().strip().splitlines()[-1])
    assert {k: record[k] for k in ("event", *fields)} == {"event": "turn", **shown}
    assert record["level"] == "info" and record["logger"] == "clinicflow.runner"
    logging.getLogger("aiohttp.server").warning("plain %s", "text")
    other = json.loads(as_json.getvalue().strip().splitlines()[-1])
    assert other["message"] == "plain text" and other["level"] == "warning"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_no_log_line_carries_a_phone_number_whoever_logs_it(captured: Any, fmt: str) -> None:
    stream = captured(fmt)
    log_event("send_retry", 30, row=7, error="POST /api/sendText: chat 5511987650101@c.us gone")
    try:
        raise ValueError("no such chat 208898765432109@lid")
    except ValueError:
        logging.getLogger("aiohttp.server").exception("error handling /chats/%s", "5511987650101")
    written = stream.getvalue()
    assert "5511987650101" not in written and "208898765432109" not in written
    assert "<13-digits>@c.us" in written and "<15-digits>@lid" in written
    assert "row=7" in written or '"row": 7' in written


def test_log_format_comes_from_the_configuration() -> None:
    assert RunnerConfig.from_env({"CLINICFLOW_LOG_FORMAT": "JSON"}).log_format == "json"
    assert RunnerConfig.from_env({}).log_format == "text"
    with pytest.raises(ConfigError):
        RunnerConfig.from_env({"CLINICFLOW_LOG_FORMAT": "xml"})


def test_the_plain_api_key_wins_and_a_hashed_one_alone_is_refused() -> None:
    env = {"WAHA_API_KEY": "sha512:abcd", "WAHA_API_KEY_PLAIN": "plain-key"}
    assert RunnerConfig.from_env(env).waha_api_key == "plain-key"
    with pytest.raises(ConfigError, match="WAHA_API_KEY_PLAIN"):
        RunnerConfig.from_env({"WAHA_API_KEY": "sha512:abcd"})
    assert RunnerConfig.from_env({"WAHA_API_KEY": "k"}).waha_api_key == "k"


# -- health, lock, retention ----------------------------------------------------------------


async def test_health_tells_when_the_last_webhook_arrived(make_live: MakeLive) -> None:
    live = await make_live()
    async with live.http.get(live.url("/health")) as r:
        before = (await r.json())["webhooks"]
    assert before == {"received": 0, "last_at": None, "seconds_ago": None, "last_status": None}
    await live.say(PATIENT, "oi")
    async with live.http.post(live.hook, data=b"not json") as r:
        assert r.status == 400
    async with live.http.get(live.url("/health")) as r:
        after = (await r.json())["webhooks"]
    assert after["received"] == 2 and after["last_status"] == 400
    assert after["last_at"] is not None and after["seconds_ago"] < 60


async def _waha_health(live: Any) -> dict[str, Any]:
    async with live.http.get(live.url("/health")) as r:
        return dict((await r.json())["waha"])


async def test_health_follows_what_sends_see_of_waha_not_the_next_poll(
    make_live: MakeLive, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="clinicflow.runner")
    live = await make_live(status_poll=3600)  # one poll at start, the next one in an hour
    await until(lambda: live.app[RUNTIME].waha_status == "WORKING")
    await live.waha.down()
    await live.say(PATIENT, "oi")  # her reply cannot go: connection refused
    await until(lambda: live.app[RUNTIME].metrics.value("send_failures", outcome="retry") > 0)
    assert await _waha_health(live) == {"session": "default", "status": "unreachable",
                                        "working": False}  # fmt: skip
    await live.waha.up()
    await until(lambda: bool(live.sent_to(PATIENT)))  # the reply goes: WAHA works again
    assert (await _waha_health(live))["working"] is True
    # A 5xx on a send marks it unreachable at once; the next send WAHA takes, working again.
    caplog.clear()
    live.waha.fail_next(1, 503, path="/api/sendText")
    await live.say(PATIENT, "quanto custa a consulta?")
    await live.settle()
    statuses = [
        fields["status"]
        for r in caplog.records
        if (fields := parse_event_line(r.getMessage())) and fields["event"] == "waha_status"
    ]
    assert statuses == ["unreachable", "WORKING"]
    assert (await _waha_health(live))["working"] is True


async def test_the_data_dir_is_locked_while_serving(make_live: MakeLive, data_dir: Path) -> None:
    assert not in_use(data_dir)
    await make_live()
    assert in_use(data_dir)


async def test_retention_job_redacts_old_texts_at_start(
    make_live: MakeLive, data_dir: Path
) -> None:
    conn = sqlite3.connect(data_dir / DB_NAME)
    with conn:
        conn.execute(
            "INSERT INTO messages (chat_id, direction, text, kind, at) "
            "VALUES (?, 'in', 'texto de 2020', 'text', '2020-01-01T10:00:00.000+00:00')",
            (PATIENT,),
        )
    conn.close()
    live = await make_live()  # ManualClock: 2026-03-02; the bundled catalog keeps 730 days
    await until(lambda: live.runtime.metrics.value("texts_redacted") == 1)
    [row] = live.engine.store.query("SELECT text FROM messages WHERE chat_id = ?", (PATIENT,))
    assert row["text"] == REDACTED


# -- reload ---------------------------------------------------------------------------------


OLD_ASK = "Você já tem em mente qual DIU prefere?"
NEW_ASK = "Qual DIU você gostaria de conhecer melhor?"


class Served:
    def __init__(self, app: Any, server: TestServer, http: aiohttp.ClientSession) -> None:
        self.app, self.server, self.http = app, server, http

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def served(
    tmp_path: Path, data_dir: Path, waha: FakeWaha, embedder: Any
) -> AsyncIterator[tuple[Served, Path, Engine]]:
    catalog = tmp_path / "catalogo"
    shutil.copytree(bundled_catalog_path(), catalog, ignore=shutil.ignore_patterns("__*"))
    engine = Engine.from_catalog(catalog, data_dir=data_dir, embedder=embedder, clock=ManualClock())
    app = create_app(base_config(waha, data_dir, catalog=catalog), engine=engine)
    install_sighup(app)
    server = TestServer(app)
    await server.start_server()
    http = aiohttp.ClientSession()
    yield Served(app, server, http), catalog, engine
    await http.close()
    await server.close()
    engine.close_resources()


async def test_reload_endpoint_needs_the_token_and_refuses_a_broken_catalog(
    served: tuple[Served, Path, Engine],
) -> None:
    live, catalog, engine = served
    before = engine.catalog.digest
    async with live.http.post(live.url("/admin/reload")) as r:
        assert r.status == 401
    path = catalog / "sop.yaml"
    path.write_text(path.read_text("utf-8").replace("start: boas_vindas", "start: nao_existe"))
    async with live.http.post(live.url("/admin/reload"), headers=AUTH) as r:
        body = await r.json()
    assert r.status == 422 and body["ok"] is False
    assert any("sop.yaml:" in line and "nao_existe" in line for line in body["problems"])
    assert engine.catalog.digest == before
    assert live.app[RUNTIME].metrics.value("reloads", outcome="refused") == 1


async def test_reload_reads_the_staff_list_again(served: tuple[Served, Path, Engine]) -> None:
    live, catalog, _ = served
    runtime = live.app[RUNTIME]
    assert "5511990000002" in runtime.staff.phones
    path = catalog / "clinic.yaml"
    path.write_text(path.read_text("utf-8").replace("5511990000002", "5511990000009"), "utf-8")
    async with live.http.post(live.url("/admin/reload"), headers=AUTH) as r:
        assert r.status == 200, await r.text()
    assert "5511990000009" in runtime.staff.phones
    assert "5511990000002" not in runtime.staff.phones
    assert "551190000009@c.us" in runtime.staff.chat_ids  # every form of her id, as at start


async def test_reload_by_endpoint_and_sighup_keeps_pinned_versions(
    served: tuple[Served, Path, Engine],
) -> None:
    live, catalog, engine = served
    engine.handle("old@c.us", "quero saber do DIU")
    pinned = engine.store.conversation("old@c.us")
    assert pinned is not None
    path = catalog / "diu.yaml"
    path.write_text(path.read_text("utf-8").replace(OLD_ASK, NEW_ASK), "utf-8")
    async with live.http.post(live.url("/admin/reload"), headers=AUTH) as r:
        body = await r.json()
    assert r.status == 200 and body["ok"] and "diu" in body["scripts"]
    assert body["digest"] == engine.catalog.digest
    reply = engine.handle("old@c.us", "Ana")
    assert any(OLD_ASK in text for text in reply.replies), reply.replies
    after = engine.store.conversation("old@c.us")
    assert after is not None and after["script_digest"] == pinned["script_digest"]

    path.write_text(path.read_text("utf-8").replace(NEW_ASK, OLD_ASK), "utf-8")
    os.kill(os.getpid(), signal.SIGHUP)
    metrics = live.app[RUNTIME].metrics
    await until(lambda: metrics.value("reloads", outcome="ok") == 2, timeout=60)
    assert engine.catalog.script("diu") is not None
    assert OLD_ASK in Path(engine.catalog.script("diu").path).read_text("utf-8")  # type: ignore[union-attr]


async def test_a_second_runner_on_the_same_data_dir_is_refused(
    make_live: MakeLive, waha: FakeWaha, data_dir: Path
) -> None:
    from clinicflow.datadir import DataDirInUse

    live = await make_live()
    second = create_app(base_config(waha, data_dir), engine=live.engine)
    server = TestServer(second)
    with pytest.raises(
        DataDirInUse, match=r"já está em uso por outro processo do clinicflow \(pid"
    ):
        await server.start_server()
    await server.close()
    assert await live.say(PATIENT, "oi") == [200]  # the first one serves on


@pytest.mark.parametrize(
    "args",
    [["staff", "list"], ["patient", "export", "11987654321"], ["report"]],
    ids=["staff", "patient", "report"],
)
def test_a_file_given_as_data_is_one_line_in_portuguese(tmp_path: Path, args: list[str]) -> None:
    from click.testing import CliRunner

    from clinicflow.cli import main

    blocker = tmp_path / "um-arquivo"
    blocker.write_text("x")
    result = CliRunner().invoke(main, [*args, "--data", str(blocker)])
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit), result.output
    [line] = result.output.strip().splitlines()
    assert line.startswith("Erro: ") and "File exists" not in line and "Traceback" not in line


def test_an_unwritable_data_dir_is_one_clear_line(tmp_path: Path) -> None:
    from clinicflow.datadir import ensure_writable
    from clinicflow.errors import StorageError

    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StorageError) as caught:
        ensure_writable(blocker / "data")
    message = str(caught.value)
    assert "\n" not in message and "não dá para gravar na pasta de dados" in message
    assert "precisa ser uma pasta" in message and "File exists" not in message
