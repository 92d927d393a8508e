"""A patient's data rights (LGPD): export, erase (every table scanned), retention.

The data is made the real way: a live runner with the fake WAHA, a hand-off whose brief goes
to the staff phone, a staff command naming her number, a pending follow-up.
"""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

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
    waha,
)

from clinicflow.cli import main
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


def cells(db: Path) -> list[tuple[str, str, str]]:
    """Every (table, column, value-as-text) of the database."""
    conn = sqlite3.connect(db)
    out: list[tuple[str, str, str]] = []
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        for table in tables:
            cursor = conn.execute(f'SELECT * FROM "{table}"')
            names = [d[0] for d in cursor.description]
            for row in cursor:
                for name, value in zip(names, row, strict=True):
                    text = value.decode("utf-8", "ignore") if isinstance(value, bytes) else value
                    out.append((table, name, "" if text is None else str(text)))
    finally:
        conn.close()
    return out


def traces_of_her(db: Path) -> list[tuple[str, str]]:
    needles = (*SPELLINGS, "Quintanilha", "Quintessa")
    return [(t, c) for t, c, text in cells(db) if any(n in text for n in needles)]


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


def other_rows(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return {
            table: conn.execute(
                f"SELECT COUNT(*) FROM {table} WHERE chat_id = ?", (OTHER,)
            ).fetchone()[0]
            for table in ("conversations", "messages", "events", "leads", "inbox", "outbox")
        }
    finally:
        conn.close()


async def test_erase_leaves_no_trace_of_her_in_any_table(
    make_live: MakeLive, data_dir: Path
) -> None:
    live = await make_live()
    await converse(live)
    db = data_dir / DB_NAME
    before = traces_of_her(db)
    touched = {table for table, _ in before}
    assert {"messages", "conversations", "checkpoints", "inbox", "outbox"} <= touched
    assert any(t == "outbox" and c == "text" for t, c in before), "the brief went to the staff"
    kept = other_rows(db)

    done = erase_patient(data_dir, "+55 (11) 98765-4321", now=NOW)

    assert traces_of_her(db) == []
    assert other_rows(db) == kept, "the other patient's data is untouched"
    assert live.engine.state_of(HER) is None
    # The rest of the data dir (index.lance with its corpus table, models/, log_key) is not
    # about her, and erase knows it.
    others = {p.name for p in data_dir.iterdir() if not p.name.startswith(DB_NAME)}
    assert {"index.lance", "models", "log_key"} <= others <= set(NOT_PATIENT_DATA), others
    assert files_with_traces(data_dir) == []
    assert done.deleted["messages"] >= 4 and done.deleted["conversations"] == 1
    conn = sqlite3.connect(db)
    [(at, conversations, rows)] = conn.execute("SELECT at, conversations, rows FROM erasures")
    conn.close()
    assert conversations == 1 and "5511" not in rows and at.startswith("2026-03-02")
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


async def test_export_holds_everything_about_her_and_nothing_else(
    make_live: MakeLive, data_dir: Path
) -> None:
    live = await make_live()
    await converse(live)
    found = export_patient(data_dir, "11 98765-4321", now=NOW)
    text = json.dumps(found, ensure_ascii=False)
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


def test_unknown_patient_is_a_clean_error(tmp_path: Path) -> None:
    with pytest.raises(PatientNotFound):
        export_patient(tmp_path, "11987654321", now=NOW)
    sqlite3.connect(tmp_path / DB_NAME).execute("CREATE TABLE t (chat_id TEXT)").connection.close()
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


def test_a_lid_linked_to_her_number_is_erased_too(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME)
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
    left = [value for _, _, value in cells(tmp_path / DB_NAME)]
    assert "olá" in left and "oi" not in left and "123456789@lid" not in left


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
    db = data_dir / DB_NAME
    assert live.engine.state_of(HER_LID) is not None and live.engine.state_of(HER) is None
    before = {table for table, _ in traces_of_her(db)}
    assert {"wa_ids", "identities", "messages", "inbox"} <= before
    kept = other_rows(db)

    done = erase_patient(data_dir, "(11) 98765-4321", now=NOW)

    assert HER_LID in done.chat_ids
    assert {"wa_ids", "identities", "lid_lookups", "conversations"} <= set(done.deleted)
    assert traces_of_her(db) == []
    lid_digits = HER_LID.split("@")[0]
    assert [(t, c) for t, c, value in cells(db) if lid_digits in value] == []
    assert other_rows(db) == kept
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


async def test_erase_by_her_lid_removes_everything_under_her_identity_and_the_link_last(
    make_live: MakeLive, data_dir: Path
) -> None:
    live = await make_live()
    await _lid_conversation(live)
    db = data_dir / DB_NAME
    kept = other_rows(db)

    done = erase_patient(data_dir, HER_LID, now=NOW)

    assert HER in done.chat_ids and HER_LID in done.chat_ids
    assert {"conversations", "leads", "events", "checkpoints", "messages", "wa_ids"} <= set(
        done.deleted
    )
    assert list(done.deleted)[-2:] == ["identities", "wa_ids"], "the links go last"
    assert traces_of_her(db) == []
    lid_digits = HER_LID.split("@")[0]
    assert [(t, c) for t, c, value in cells(db) if lid_digits in value] == []
    assert other_rows(db) == kept
    assert live.engine.state_of(HER) is None
    identities = live.runtime.inbox.identities
    assert identities.identity_of(HER) is None and identities.identity_of(HER_LID) is None
    with pytest.raises(PatientNotFound):
        export_patient(data_dir, "11987654321", now=NOW)


def _aged_history(folder: Path) -> None:
    conn = sqlite3.connect(folder / DB_NAME)
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
        for day, text in ((1, "velha"), (40, "recente")):
            at = (NOW - timedelta(days=60 - day)).isoformat(timespec="milliseconds")
            conn.execute("INSERT INTO messages (chat_id, text, at) VALUES ('x', ?, ?)", (text, at))
            conn.execute("INSERT INTO handoffs (brief, status, at) VALUES (?, 'resolved', ?)",
                         (json.dumps({"summary": text}), at))  # fmt: skip
            stamp = (NOW - timedelta(days=60 - day)).timestamp()
            conn.execute("INSERT INTO outbox (text, status, created_at) VALUES (?, 'sent', ?)",
                         (text, stamp))  # fmt: skip
    conn.close()


def test_retention_redacts_only_texts_older_than_the_window(tmp_path: Path) -> None:
    _aged_history(tmp_path)
    assert redact_expired(tmp_path, 30, now=NOW) == 3
    texts = [value for _, column, value in cells(tmp_path / DB_NAME) if column in ("text", "brief")]
    assert "velha" not in " ".join(texts)
    assert texts.count("recente") == 2 and REDACTED in texts
    assert redact_expired(tmp_path, 30, now=NOW) == 0, "already redacted: nothing to do"
    with pytest.raises(ValueError):
        redact_expired(tmp_path, 0, now=NOW)


def _restore_her(folder: Path) -> None:
    conn = sqlite3.connect(folder / DB_NAME)
    with conn:
        conn.execute(
            "INSERT INTO messages (chat_id, text, at) VALUES (?, ?, ?)",
            (HER, HER_WORDS, "2001-01-01T00:00:00.000+00:00"),
        )
    conn.close()


def test_cli_patient_export_erase_and_retention(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME)
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
    assert HER_WORDS in [v for _, _, v in cells(tmp_path / DB_NAME)]
    for answer in ("não\n", "NAO\n", "\n", "talvez\nn\n", ""):
        kept = runner.invoke(main, ["patient", "erase", "11987654321", *data], input=answer)
        assert kept.exit_code == 1 and "Nada foi apagado." in kept.output, answer
        assert "Error" not in kept.output and "Aborted" not in kept.output, answer
    assert HER_WORDS in [v for _, _, v in cells(tmp_path / DB_NAME)]
    asked = runner.invoke(main, ["patient", "erase", "11987654321", *data], input="talvez\ns\n")
    assert asked.exit_code == 0 and "Responda s (sim) ou n (não)." in asked.output
    assert "Apagados 1 registros" in asked.output
    assert HER_WORDS not in [v for _, _, v in cells(tmp_path / DB_NAME)]
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


def test_retention_redacts_the_workspace_copies_of_notices(tmp_path: Path) -> None:
    from clinicflow.staff.assignment import Assignments
    from clinicflow.storage import connect

    conn = connect(tmp_path / DB_NAME)
    notices = Assignments(conn)
    for handoff_id, day, text in ((1, 1, "Paciente: Velha"), (2, 40, "Paciente: Recente")):
        notices.noticed(handoff_id, "x@c.us", True, text,
                        (NOW - timedelta(days=60 - day)).timestamp())  # fmt: skip
    conn.close()
    assert redact_expired(tmp_path, 30, now=NOW) == 1
    briefs = [v for table, column, v in cells(tmp_path / DB_NAME) if column == "brief"]
    assert briefs == [REDACTED, "Paciente: Recente"]


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
