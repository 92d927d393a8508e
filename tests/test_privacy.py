"""A patient's data rights (LGPD): export, erase (every table scanned), retention.

The data is made the real way: a live runner with the fake WAHA, a hand-off whose brief goes
to the staff phone, a staff command naming her number, a pending follow-up. The tests that
read or write the database run on SQLite and on PostgreSQL (``backend``, conftest.py) and
look at it through :mod:`clinicflow.database`, as clinicflow does.
"""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from runner_harness import (  # noqa: F401 - fixtures
    STAFF_PHONE,
    Live,
    MakeLive,
    data_dir,
    embedder,
    make_live,
    prebuilt,
    until,
    waha,
)

from clinicflow.cli import main
from clinicflow.clock import ManualClock
from clinicflow.database import connect, is_postgres, resolve
from clinicflow.privacy import (
    NOT_PATIENT_DATA,
    REDACTED,
    PatientNotFound,
    erase_patient,
    export_patient,
    patient_ids,
    redact_expired,
)
from clinicflow.storage import DB_NAME

HER = "5511987654321@c.us"
HER_LID = "208898765432109@lid"
OTHER = "5511955554444@c.us"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
HER_WORDS = "uso o anticoncepcional Quintessa há onze anos"
HER_NAME = "Beatriz Quintanilha"
#: Her number as it may be written anywhere.
SPELLINGS = ("5511987654321", "551187654321", "11987654321", "98765-4321", "98765 4321")


def db(data: Path) -> Any:
    """The data dir's database (SQLite, or the test's PostgreSQL schema)."""
    return connect(resolve(data))


def as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "ignore")
    if isinstance(value, dict | list):  # jsonb
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def cells(data: Path) -> list[tuple[str, str, str]]:
    """Every (table, column, value-as-text) of the database, tables by name, rows sorted.

    Neither backend promises an order without ``ORDER BY`` (PostgreSQL moves a row to the end
    of its heap when it is rewritten, even with the same values), so two snapshots compare by
    content: a row's cells stay together, rows are sorted by their texts.
    """
    conn = db(data)
    out: list[tuple[str, str, str]] = []
    try:
        tables = sorted(
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        )
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            rows = sorted([as_text(value) for value in row] for row in cursor.fetchall())
            for row in rows:
                out.extend((table, name, text) for name, text in zip(names, row, strict=True))
    finally:
        conn.close()
    return out


def traces_of_her(data: Path) -> list[tuple[str, str]]:
    needles = (*SPELLINGS, "Quintanilha", "Quintessa")
    return [(t, c) for t, c, text in cells(data) if any(n in text for n in needles)]


def files_with_traces(data: Path) -> list[str]:
    """Files of the data dir, besides the SQLite ones, that hold her number or words."""
    needles = [n.encode() for n in (*SPELLINGS, HER_LID.split("@")[0], "Quintanilha", "Quintessa")]
    return [
        str(path.relative_to(data))
        for path in sorted(data.rglob("*"))
        if path.is_file()
        and not path.name.startswith(DB_NAME)
        and any(needle in path.read_bytes() for needle in needles)
    ]


async def converse(live: Live) -> None:
    for text in (f"Oi! Meu nome é {HER_NAME}", f"Tenho uma dúvida: {HER_WORDS}"):
        await live.say(HER, text)
        await live.settle()
    await live.say(HER, "quero falar com uma atendente")
    await live.settle()
    await live.say(STAFF_PHONE, "#devolver (11) 98765-4321")
    await live.settle()
    for text in ("oi, quanto custa a consulta?", "meu nome é Carla Nogueira"):
        await live.say(OTHER, text)
        await live.settle()


def other_rows(data: Path, chat: str = OTHER) -> dict[str, int]:
    conn = db(data)
    try:
        return {
            table: conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE chat_id = ?", (chat,)
            ).fetchone()[0]
            for table in ("conversations", "messages", "events", "leads", "inbox", "outbox")
        }
    finally:
        conn.close()


def checkpoint_rows(data: Path, chat: str) -> dict[str, int]:
    """The rows of LangGraph's tables under the chat's thread (each backend's layout)."""
    conn = db(data)
    try:
        tables = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        if not is_postgres(conn):
            tables = ("checkpoints", "writes")
        return {
            table: conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE thread_id = ?", (chat,)
            ).fetchone()[0]
            for table in tables
        }
    finally:
        conn.close()


def erasure_lines(data: Path) -> list[tuple[str, int, str]]:
    conn = db(data)
    try:
        return [tuple(r) for r in conn.execute("SELECT at, conversations, rows FROM erasures")]
    finally:
        conn.close()


@pytest.mark.usefixtures("backend")
async def test_erase_leaves_no_trace_of_her_in_any_table(
    make_live: MakeLive, data_dir: Path
) -> None:
    live = await make_live()
    await converse(live)
    before = traces_of_her(data_dir)
    touched = {table for table, _ in before}
    assert {"messages", "conversations", "checkpoints", "inbox", "outbox"} <= touched
    assert any(t == "outbox" and c == "text" for t, c in before), "the brief went to the staff"
    kept = other_rows(data_dir)
    assert checkpoint_rows(data_dir, HER)["checkpoints"] == 1
    others_state = checkpoint_rows(data_dir, OTHER)

    done = erase_patient(data_dir, "+55 (11) 98765-4321", now=NOW)

    assert traces_of_her(data_dir) == []
    assert other_rows(data_dir) == kept, "the other patient's data is untouched"
    assert set(checkpoint_rows(data_dir, HER).values()) == {0}, "her checkpoints are gone"
    assert checkpoint_rows(data_dir, OTHER) == others_state
    assert live.engine.state_of(HER) is None
    assert live.engine.state_of(OTHER) is not None
    # The rest of the data dir (index.lance with its corpus table, models/, log_key) is not
    # about her, and erase knows it.
    others = {p.name for p in data_dir.iterdir() if not p.name.startswith(DB_NAME)}
    assert {"index.lance", "models", "log_key"} <= others <= set(NOT_PATIENT_DATA), others
    assert files_with_traces(data_dir) == []
    assert done.deleted["messages"] >= 4 and done.deleted["conversations"] == 1
    assert done.deleted["checkpoints"] == 1 and done.deleted["inbox"] >= 3
    assert done.deleted["outbox"] >= 3, "her replies and the brief to the staff"
    [(at, conversations, rows)] = erasure_lines(data_dir)
    assert conversations == 1 and "5511" not in rows and at.startswith("2026-03-02")
    assert json.loads(rows) == {"deleted": done.deleted, "scrubbed": done.scrubbed}
    from clinicflow.metrics import report

    figures = report(
        live.engine.store, since=None, until=None, script=None, campaign=None,
        catalog=live.engine.catalog, now=NOW + timedelta(days=1),
    )  # fmt: skip
    assert figures.erased == 1 and figures.as_dict()["erased_on_request"] == 1
    # She can write again: a new conversation starts.
    await live.say(HER, "oi")
    await live.settle()
    assert live.engine.state_of(HER) is not None and live.sent_to(HER)


@pytest.mark.usefixtures("backend")
async def test_export_holds_everything_about_her_and_nothing_else(
    make_live: MakeLive, data_dir: Path
) -> None:
    live = await make_live()
    await converse(live)
    found = export_patient(data_dir, "11 98765-4321", now=NOW)
    assert set(found) == {"patient", "chat_ids", "exported_at", "tables"}
    text = json.dumps(found, ensure_ascii=False)  # JSON-ready as it is
    assert HER_WORDS in text and HER_NAME in text
    assert OTHER not in text and "Carla Nogueira" not in text
    assert found["chat_ids"] == sorted([HER, "551187654321@c.us"])
    assert found["exported_at"] == "2026-03-02T15:00:00.000+00:00"
    assert {"conversations", "messages", "events", "leads", "handoffs"} <= set(found["tables"])
    messages = found["tables"]["messages"]
    assert {m["direction"] for m in messages} == {"in", "out"}
    assert all(m["chat_id"] == HER for m in messages)
    conversation = found["tables"]["conversations"][0]
    assert isinstance(conversation["slots"], dict)
    [checkpoint] = found["tables"]["checkpoints"]
    assert checkpoint["thread_id"] == HER
    shown = [str(v) for rows in found["tables"].values() for row in rows for v in row.values()]
    assert any(v.endswith("bytes: estado interno da conversa>") for v in shown), "blobs: a size"
    assert "apscheduler_jobs" not in found["tables"], "no follow-up pending for her"


@pytest.mark.usefixtures("backend")
def test_unknown_patient_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(PatientNotFound):
        export_patient(tmp_path, "11987654321", now=NOW)
    conn = db(tmp_path)
    conn.execute("CREATE TABLE t (chat_id TEXT)")
    conn.close()
    with pytest.raises(PatientNotFound, match="nenhum dado"):
        erase_patient(tmp_path, "11987654321", now=NOW)
    with pytest.raises(PatientNotFound):
        erase_patient(tmp_path, "11987654321", now=NOW)
    with pytest.raises(PatientNotFound):
        patient_ids("abc")


@pytest.mark.parametrize(
    "phone",
    [
        pytest.param("+55 (11) 98765-4321", id="formatted"),
        pytest.param("11987654321", id="national"),
        pytest.param("5511987654321@c.us", id="chat-id"),
        pytest.param("551187654321", id="without-ninth-digit"),
    ],
)
def test_any_form_of_her_number_finds_her(phone: str) -> None:
    ids = patient_ids(phone)
    assert set(ids.chat_ids) == {HER, "551187654321@c.us"}
    assert ids.mentions("ligue para +55 11 98765-4321 hoje")
    assert ids.mentions("WhatsApp: (11) 98765-4321")
    assert not ids.mentions("pedido 5511987654321999")
    assert ids.scrub("WhatsApp: +55 11 98765-4321.") == f"WhatsApp: {REDACTED}."


@pytest.mark.usefixtures("backend")
def test_a_lid_linked_to_her_number_is_erased_too(tmp_path: Path) -> None:
    conn = db(tmp_path)  # identities without a primary key: rows named by rowid or ctid
    with conn:
        conn.execute("CREATE TABLE identities (lid TEXT, phone TEXT)")
        conn.execute("INSERT INTO identities VALUES ('123456789@lid', '5511987654321')")
        conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, chat_id TEXT, text TEXT)")
        conn.execute("INSERT INTO messages (chat_id, text) VALUES ('123456789@lid', 'oi')")
        conn.execute("INSERT INTO messages (chat_id, text) VALUES ('999@lid', 'olá')")
    conn.close()
    done = erase_patient(tmp_path, "11987654321", now=NOW)
    assert "123456789@lid" in done.chat_ids
    assert done.deleted == {"identities": 1, "messages": 1}
    left = [value for _, _, value in cells(tmp_path)]
    assert "olá" in left and "oi" not in left and "123456789@lid" not in left
    assert [conversations for _, conversations, _ in erasure_lines(tmp_path)] == [0]


@pytest.mark.usefixtures("backend")
def test_a_mention_in_another_chats_json_state_is_replaced_in_place(tmp_path: Path) -> None:
    # JSONB: text to SQLite, jsonb to PostgreSQL (edited in its strings, written back as jsonb).
    conn = db(tmp_path)
    with conn:
        conn.execute("CREATE TABLE conversations (chat_id TEXT PRIMARY KEY, slots JSONB)")
        referred = {"indicada_por": "(11) 98765-4321", "nome": "Carla"}
        for chat, slots in ((HER, {"nome": HER_NAME}), (OTHER, referred)):
            conn.execute("INSERT INTO conversations VALUES (?, ?)", (chat, json.dumps(slots)))
    conn.close()

    done = erase_patient(tmp_path, HER, now=NOW)

    assert done.deleted == {"conversations": 1} and done.scrubbed == {"conversations": 1}
    [(chat, slots)] = query(tmp_path, "SELECT chat_id, slots FROM conversations")
    slots = json.loads(slots) if isinstance(slots, str) else slots
    assert chat == OTHER and slots == {"indicada_por": f"({REDACTED}", "nome": "Carla"}


def test_sqlite_files_keep_no_bytes_of_her_after_erasure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite only: deleted pages are overwritten (secure_delete) and the WAL truncated.
    (PostgreSQL's counterpart, a VACUUM of the tables changed, is checked above.)"""
    monkeypatch.delenv("CLINICFLOW_DATABASE_URL", raising=False)  # another test's backend
    conn = db(tmp_path)
    with conn:
        conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, chat_id TEXT, text TEXT)")
        conn.executemany("INSERT INTO messages (chat_id, text) VALUES (?, ?)",
                         [(HER, HER_WORDS), (OTHER, "oi, quanto custa a consulta?")])  # fmt: skip
    conn.close()
    files = sorted(tmp_path.glob(f"{DB_NAME}*"))
    assert any(HER_WORDS.encode() in path.read_bytes() for path in files)

    erase_patient(tmp_path, HER, now=NOW)

    files = sorted(tmp_path.glob(f"{DB_NAME}*"))
    assert files and not any(HER_WORDS.encode() in path.read_bytes() for path in files)
    assert b"quanto custa" in (tmp_path / DB_NAME).read_bytes()


@pytest.mark.usefixtures("backend")
async def test_erase_by_phone_follows_her_identity_to_the_conversation_under_her_lid(
    make_live: MakeLive, data_dir: Path
) -> None:
    # Her conversation began under her lid (WAHA did not know the phone); later she wrote
    # with her phone as the alternate id. The identity tables (wa_ids, identities,
    # lid_lookups) link the two: erasing by her phone finds the lid conversation.
    live = await make_live()
    w = live.waha
    await live.say(HER_LID, f"Oi! Meu nome é {HER_NAME}")
    await live.settle()
    later = w.lid_message(HER_LID, f"Tenho uma dúvida: {HER_WORDS}", phone=HER)
    assert await w.emit(live.hook, "message", later, retries=0) == [200]
    await live.settle()
    for text in ("oi, quanto custa a consulta?", "meu nome é Carla Nogueira"):
        await live.say(OTHER, text)
        await live.settle()
    assert live.engine.state_of(HER_LID) is not None and live.engine.state_of(HER) is None
    before = {table for table, _ in traces_of_her(data_dir)}
    assert {"wa_ids", "identities", "messages", "inbox"} <= before
    kept = other_rows(data_dir)
    assert checkpoint_rows(data_dir, HER_LID)["checkpoints"] == 1

    done = erase_patient(data_dir, "(11) 98765-4321", now=NOW)

    assert HER_LID in done.chat_ids
    assert {"wa_ids", "identities", "lid_lookups", "conversations"} <= set(done.deleted)
    assert traces_of_her(data_dir) == []
    lid_digits = HER_LID.split("@")[0]
    assert [(t, c) for t, c, value in cells(data_dir) if lid_digits in value] == []
    assert other_rows(data_dir) == kept
    assert set(checkpoint_rows(data_dir, HER_LID).values()) == {0}
    assert live.engine.state_of(HER_LID) is None
    assert live.runtime.inbox.identities.identity_of(HER) is None
    assert files_with_traces(data_dir) == []


async def _lid_conversation(live: Live) -> None:
    """Her conversation kept under her phone (WAHA gave it with the first message), while
    every message she writes comes from her lid (as WAHA increasingly shows her)."""
    w = live.waha
    for text in (f"Oi! Meu nome é {HER_NAME}", f"Tenho uma dúvida: {HER_WORDS}"):
        payload = w.lid_message(HER_LID, text, phone=HER)
        assert await w.emit(live.hook, "message", payload, retries=0) == [200]
        await live.settle()
    for text in ("oi, quanto custa a consulta?", "meu nome é Carla Nogueira"):
        await live.say(OTHER, text)
        await live.settle()


def _counts(found: dict[str, Any]) -> dict[str, int]:
    return {table: len(rows) for table, rows in found["tables"].items()}


@pytest.mark.usefixtures("backend")
async def test_export_by_any_of_her_ids_finds_everything_under_her_identity(
    make_live: MakeLive, data_dir: Path
) -> None:
    live = await make_live()
    await _lid_conversation(live)
    assert live.runtime.inbox.identities.identity_of(HER_LID) == HER
    by_phone = export_patient(data_dir, "(11) 98765-4321", now=NOW)
    assert {"conversations", "leads", "events", "checkpoints", "messages"} <= set(
        by_phone["tables"]
    )
    for form in (HER_LID, HER, "5511987654321", "+55 11 98765-4321", "551187654321@c.us"):
        found = export_patient(data_dir, form, now=NOW)
        assert found["chat_ids"] == by_phone["chat_ids"], form
        assert HER_LID in found["chat_ids"] and HER in found["chat_ids"], form
        assert _counts(found) == _counts(by_phone), form
        text = json.dumps(found, ensure_ascii=False)
        assert HER_WORDS in text and "Carla Nogueira" not in text, form


@pytest.mark.usefixtures("backend")
async def test_erase_by_her_lid_removes_everything_under_her_identity_and_the_link_last(
    make_live: MakeLive, data_dir: Path
) -> None:
    live = await make_live()
    await _lid_conversation(live)
    kept = other_rows(data_dir)

    done = erase_patient(data_dir, HER_LID, now=NOW)

    assert HER in done.chat_ids and HER_LID in done.chat_ids
    assert {"conversations", "leads", "events", "checkpoints", "messages", "wa_ids"} <= set(
        done.deleted
    )
    assert list(done.deleted)[-2:] == ["identities", "wa_ids"], "the links go last"
    assert traces_of_her(data_dir) == []
    lid_digits = HER_LID.split("@")[0]
    assert [(t, c) for t, c, value in cells(data_dir) if lid_digits in value] == []
    assert other_rows(data_dir) == kept
    assert live.engine.state_of(HER) is None
    identities = live.runtime.inbox.identities
    assert identities.identity_of(HER) is None and identities.identity_of(HER_LID) is None
    with pytest.raises(PatientNotFound):
        export_patient(data_dir, "11987654321", now=NOW)


MENTION = "minha amiga do (11) 98765-4321 indicou vocês"


@pytest.mark.usefixtures("backend")
async def test_a_mention_in_another_chat_goes_and_that_chat_keeps_its_state(
    make_live: MakeLive, data_dir: Path, backend: str
) -> None:
    live = await make_live()
    for text in (f"Oi! Meu nome é {HER_NAME}", f"Tenho uma dúvida: {HER_WORDS}"):
        await live.say(HER, text)
        await live.settle()
    for text in ("oi, quanto custa a consulta?", f"{MENTION}, meu nome é Carla Nogueira",
                 "quero falar com uma atendente"):  # fmt: skip
        await live.say(OTHER, text)
        await live.settle()
    # Her number is in the other chat's transcript, its hand-off brief and its LangGraph
    # state (binary: SQLite's checkpoint, PostgreSQL's checkpoint blobs).
    state_table, state_column = ("checkpoint_blobs", "blob")
    if backend == "sqlite":
        state_table, state_column = ("checkpoints", "checkpoint")
    assert (state_table, state_column) in traces_of_her(data_dir)
    handoff = f"SELECT brief FROM handoffs WHERE chat_id = '{OTHER}'"
    [(brief,)] = query(data_dir, handoff)
    assert "98765-4321" in brief and "Carla Nogueira" in brief
    found = export_patient(data_dir, HER, now=NOW)
    assert [m["text"] for m in found["tables"]["messages"] if m["chat_id"] == OTHER] == [
        f"{MENTION}, meu nome é Carla Nogueira"
    ]
    state = live.engine.state_of(OTHER)
    hers = {table: query(data_dir, f"SELECT COUNT(*) FROM {table} WHERE chat_id = '{HER}'")[0][0]
            for table in ("messages", "inbox")}  # fmt: skip
    before = cells(data_dir)

    plan = erase_patient(data_dir, HER, now=NOW, dry_run=True)
    assert cells(data_dir) == before, "a dry run changes nothing"
    done = erase_patient(data_dir, HER, now=NOW)

    assert done == plan
    assert done.scrubbed == {"handoffs": 1} and done.kept_binary == {state_table: 1}
    assert done.deleted["messages"] == hers["messages"] + 1, "hers, and the mention"
    assert done.deleted["inbox"] == hers["inbox"] + 1
    assert traces_of_her(data_dir) == [(state_table, state_column)]
    [(brief,)] = query(data_dir, handoff)
    assert "98765" not in brief and REDACTED in brief
    assert "Carla Nogueira" in brief, "the other patient's own words stay"
    assert json.loads(brief)["reason"] == "human_request", "still the other chat's brief"
    other = f"SELECT text FROM messages WHERE chat_id = '{OTHER}' AND direction = 'in' ORDER BY id"
    assert query(data_dir, other) == [("oi, quanto custa a consulta?",),
                                      ("quero falar com uma atendente",)]  # fmt: skip
    assert live.engine.state_of(OTHER) == state, "the other chat's state is whole"
    [(_, _, rows)] = erasure_lines(data_dir)
    assert json.loads(rows)["scrubbed"] == {"handoffs": 1} and "5511" not in rows
    if backend == "postgresql":  # what replaced secure_delete and the WAL truncation
        assert {"messages", "inbox", "handoffs", "conversations"} <= vacuumed(data_dir)


SP = ZoneInfo("America/Sao_Paulo")


@pytest.mark.usefixtures("backend")
async def test_erase_removes_her_pending_follow_up_and_keeps_the_others(
    make_live: MakeLive, data_dir: Path
) -> None:
    live = await make_live()
    clock = live.engine.clock
    assert isinstance(clock, ManualClock)
    clock.set(datetime(2026, 11, 24, 10, 0, tzinfo=SP))  # a Tuesday, the clinic is open
    for chat, text in ((HER, "quero passar com ginecologista, por favor"),
                       (OTHER, "quero passar com ginecologista")):  # fmt: skip
        await live.say(chat, text)
        await live.settle()
    assert live.engine.follow_ups is not None
    jobs = live.engine.follow_ups.scheduler
    assert jobs.pending(HER) is not None and jobs.pending(OTHER) is not None
    found = export_patient(data_dir, HER, now=NOW)
    [job] = found["tables"]["apscheduler_jobs"]
    assert job["id"] == f"followup:{HER}" and "bytes" in job["job_state"]
    sent = {chat: len(live.sent_to(chat)) for chat in (HER, OTHER)}

    done = erase_patient(data_dir, "11 98765-4321", now=NOW)

    assert done.deleted["apscheduler_jobs"] == 1
    assert query(data_dir, "SELECT id FROM apscheduler_jobs") == [(f"followup:{OTHER}",)]
    assert jobs.pending(HER) is None and jobs.pending(OTHER) is not None
    await asyncio.to_thread(jobs.advance_to, clock.now() + timedelta(hours=3))
    await until(lambda: len(live.sent_to(OTHER)) > sent[OTHER])
    await live.settle()
    assert len(live.sent_to(HER)) == sent[HER], "no follow-up for her"
    assert traces_of_her(data_dir) == []
    # Retention on the runner's own tables: long after (the inbox and the outbox stamp rows
    # with the real time), every finished text goes.
    assert redact_expired(data_dir, 1, now=datetime(2100, 1, 1, tzinfo=UTC)) > 0
    for table in ("messages", "inbox", "outbox"):
        assert set(query(data_dir, f"SELECT text FROM {table}")) == {(REDACTED,)}, table


def _aged_history(folder: Path) -> None:
    conn = db(folder)
    with conn:
        conn.execute(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, chat_id TEXT, text TEXT, at TEXT)"
        )
        conn.execute(
            "CREATE TABLE handoffs (id INTEGER PRIMARY KEY, brief TEXT, status TEXT, at TEXT)"
        )
        conn.execute(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY, text TEXT, status TEXT, created_at REAL)"
        )
        conn.execute(
            "CREATE TABLE inbox (id INTEGER PRIMARY KEY, text TEXT, meta TEXT, status TEXT, "
            "received_at REAL)"
        )
        for day, text in ((1, "velha"), (40, "recente")):
            at = (NOW - timedelta(days=60 - day)).isoformat(timespec="milliseconds")
            conn.execute("INSERT INTO messages (chat_id, text, at) VALUES ('x', ?, ?)", (text, at))
            conn.execute("INSERT INTO handoffs (brief, status, at) VALUES (?, 'resolved', ?)",
                         (json.dumps({"summary": text}), at))  # fmt: skip
            stamp = (NOW - timedelta(days=60 - day)).timestamp()
            conn.execute("INSERT INTO outbox (text, status, created_at) VALUES (?, 'sent', ?)",
                         (text, stamp))  # fmt: skip
            conn.execute(
                "INSERT INTO inbox (text, meta, status, received_at) VALUES (?, ?, 'done', ?)",
                (text, json.dumps({"push_name": "Ana"}), stamp),
            )
        old = (NOW - timedelta(days=59)).timestamp()
        conn.execute("INSERT INTO inbox (text, meta, status, received_at) "
                     "VALUES ('ainda na fila', '{}', 'received', ?)", (old,))  # fmt: skip
    conn.close()


def query(data: Path, sql: str) -> list[tuple[Any, ...]]:
    conn = db(data)
    try:
        return [tuple(row) for row in conn.execute(sql)]
    finally:
        conn.close()


def vacuumed(data: Path) -> set[str]:
    """PostgreSQL: the tables a manual VACUUM went through."""
    conn = db(data)
    try:
        rows = conn.execute(
            "SELECT relname FROM pg_stat_user_tables WHERE schemaname = current_schema() "
            "AND last_vacuum IS NOT NULL"
        )
        return {str(r[0]) for r in rows}
    finally:
        conn.close()


def test_retention_redacts_only_texts_older_than_the_window(tmp_path: Path, backend: str) -> None:
    _aged_history(tmp_path)
    assert redact_expired(tmp_path, 30, now=NOW) == 4
    found = cells(tmp_path)
    texts = [value for _, column, value in found if column in ("text", "brief")]
    assert "velha" not in " ".join(texts)
    assert texts.count("recente") == 3 and REDACTED in texts
    assert "ainda na fila" in texts, "an inbox row not processed yet keeps its text"
    assert query(tmp_path, "SELECT text, meta FROM inbox ORDER BY id") == [
        (REDACTED, "{}"), ("recente", '{"push_name": "Ana"}'), ("ainda na fila", "{}"),
    ]  # fmt: skip
    if backend == "postgresql":
        assert {"messages", "handoffs", "outbox", "inbox"} <= vacuumed(tmp_path)
    assert redact_expired(tmp_path, 30, now=NOW) == 0, "already redacted: nothing to do"
    with pytest.raises(ValueError):
        redact_expired(tmp_path, 0, now=NOW)


def _restore_her(folder: Path) -> None:
    conn = db(folder)
    with conn:
        conn.execute(
            "INSERT INTO messages (chat_id, text, at) VALUES (?, ?, ?)",
            (HER, HER_WORDS, "2001-01-01T00:00:00.000+00:00"),
        )
    conn.close()


@pytest.mark.usefixtures("backend")
def test_cli_patient_export_erase_and_retention(tmp_path: Path) -> None:
    conn = db(tmp_path)
    with conn:
        conn.execute(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY, chat_id TEXT, text TEXT, at TEXT)"
        )
        conn.execute(
            "INSERT INTO messages (chat_id, text, at) VALUES (?, ?, ?)",
            (HER, HER_WORDS, "2001-01-01T00:00:00.000+00:00"),
        )
    conn.close()
    runner = CliRunner()
    data = ["--data", str(tmp_path)]
    shown = runner.invoke(main, ["patient", "export", "(11) 98765-4321", *data])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["tables"]["messages"][0]["text"] == HER_WORDS
    refused = runner.invoke(main, ["patient", "erase", "11987654321", *data], input="n\n")
    assert refused.exit_code == 1 and "messages: 1 registros a apagar" in refused.output
    assert "[s/N]" in refused.output and "Nada foi apagado." in refused.output
    assert HER_WORDS in [v for _, _, v in cells(tmp_path)]
    for answer in ("não\n", "NAO\n", "\n", "talvez\nn\n", ""):
        kept = runner.invoke(main, ["patient", "erase", "11987654321", *data], input=answer)
        assert kept.exit_code == 1 and "Nada foi apagado." in kept.output, answer
        assert "Error" not in kept.output and "Aborted" not in kept.output, answer
    assert HER_WORDS in [v for _, _, v in cells(tmp_path)]
    asked = runner.invoke(main, ["patient", "erase", "11987654321", *data], input="talvez\ns\n")
    assert asked.exit_code == 0 and "Responda s (sim) ou n (não)." in asked.output
    assert "Apagados 1 registros" in asked.output
    assert HER_WORDS not in [v for _, _, v in cells(tmp_path)]
    _restore_her(tmp_path)
    sim = runner.invoke(main, ["patient", "erase", "11987654321", *data], input="Sim\n")
    assert sim.exit_code == 0 and "Apagados 1 registros" in sim.output, sim.output
    _restore_her(tmp_path)
    erased = runner.invoke(main, ["patient", "erase", "11987654321", "--yes", *data])
    assert erased.exit_code == 0 and "Apagados 1 registros" in erased.output
    missing = runner.invoke(main, ["patient", "export", "11987654321", *data])
    assert missing.exit_code == 1 and "nenhum dado" in missing.output
    aged = runner.invoke(main, ["retention", "--days", "1", *data])
    assert aged.exit_code == 0 and "0 textos" in aged.output
    configured = runner.invoke(main, ["retention", *data])  # the bundled catalog's 730 days
    assert configured.exit_code == 0, configured.output


def _clinic_with(tmp_path: Path, privacy: str, notice: bool) -> Path:
    import shutil

    folder = tmp_path / "catalog"
    shutil.copytree(Path(__file__).parent / "data" / "catalog_min", folder)
    path = folder / "clinic.yaml"
    text = path.read_text("utf-8")
    if notice:
        text = text.replace("texts:\n", 'texts:\n  privacy_notice: "Guardamos esta conversa."\n')
    path.write_text(text + privacy, "utf-8")
    return folder


def _problems(folder: Path) -> list[tuple[str, str, int]]:
    from clinicflow.clock import ManualClock
    from clinicflow.lint import lint_paths

    return [(p.code, p.severity, p.line) for p in lint_paths([folder], ManualClock(NOW))]


def test_the_bundled_catalog_has_a_privacy_section_and_notice() -> None:
    from clinicflow.loader import load_catalog

    clinic = load_catalog().clinic
    assert clinic.privacy is not None and clinic.privacy.retention_days == 730
    assert clinic.privacy.controller and clinic.privacy.requests and clinic.privacy.kept
    assert clinic.privacy_notice is not None and "LGPD" in clinic.privacy_notice


def test_privacy_section_is_read_into_a_frozen_value(tmp_path: Path) -> None:
    from dataclasses import FrozenInstanceError

    from clinicflow.loader import load_catalog

    section = (
        "privacy:\n  controller: Clínica Teste Ltda.\n  requests: peça por aqui\n"
        "  retention_days: 365\n"
    )
    clinic = load_catalog(_clinic_with(tmp_path, section, notice=True)).clinic
    assert clinic.privacy is not None
    assert (clinic.privacy.controller, clinic.privacy.retention_days) == (
        "Clínica Teste Ltda.",
        365,
    )
    with pytest.raises(FrozenInstanceError):
        clinic.privacy.retention_days = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("section", "notice", "expected"),
    [
        pytest.param(
            "privacy:\n  controller: X\n  requests: Y\n  retention_days: 0\n",
            True,
            ("bad-type", "error", 52),
            id="zero-days",
        ),
        pytest.param(
            "privacy:\n  controller: X\n  requests: Y\n  retention_days: muitos\n",
            True,
            ("bad-type", "error", 52),
            id="days-not-a-number",
        ),
        pytest.param(
            "privacy:\n  controller: X\n  requests: Y\n  keep: tudo\n",
            True,
            ("unknown-key", "error", 52),
            id="unknown-key",
        ),
        pytest.param(
            "privacy:\n  controller: X\n", True, ("missing-key", "error", 50), id="no-requests"
        ),
        pytest.param(
            "privacy:\n  controller: X\n  requests: Y\n",
            False,
            ("privacy-without-notice", "warning", 48),
            id="no-notice",
        ),
        pytest.param("", True, ("notice-without-privacy", "warning", 18), id="no-section"),
    ],
)
def test_lint_checks_the_privacy_section(
    tmp_path: Path, section: str, notice: bool, expected: tuple[str, str, int]
) -> None:
    assert expected in _problems(_clinic_with(tmp_path, section, notice))


@pytest.mark.usefixtures("backend")
def test_retention_redacts_the_workspace_copies_of_notices(tmp_path: Path) -> None:
    from clinicflow.staff.assignment import Assignments

    conn = db(tmp_path)
    notices = Assignments(conn)
    for handoff_id, day, text in ((1, 1, "Paciente: Velha"), (2, 40, "Paciente: Recente")):
        notices.noticed(handoff_id, "x@c.us", True, text,
                        (NOW - timedelta(days=60 - day)).timestamp())  # fmt: skip
    conn.close()
    assert redact_expired(tmp_path, 30, now=NOW) == 1
    briefs = query(tmp_path, "SELECT brief FROM handoff_notices ORDER BY at")
    assert briefs == [(REDACTED,), ("Paciente: Recente",)]


def test_erase_waits_for_webhooks_still_in_the_spool(tmp_path: Path) -> None:
    """Webhooks acknowledged while the database was locked may be hers: erase refuses until
    the runner has replayed them, and says so."""
    from clinicflow.errors import StorageError
    from clinicflow.spool import Spool

    data = tmp_path / "data"
    data.mkdir()
    Spool(data / "inbox.spool").append(b'{"event": "message"}')
    with pytest.raises(StorageError, match=r"inbox\.spool"):
        erase_patient(data, "+55 11 98765-4321", now=NOW)
