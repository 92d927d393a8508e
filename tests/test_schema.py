"""Schema versions: forward migrations at start, newer data refused, safe concurrent opens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from clinicflow.database import connect, resolve, set_user_version
from clinicflow.inbox import Inbox
from clinicflow.outbox import Outbox, OutMessage
from clinicflow.schema import SCHEMA_VERSION, SchemaTooNew, migrate, version_of
from clinicflow.storage import Store

pytestmark = pytest.mark.usefixtures("backend")  # SQLite and PostgreSQL (conftest.py)

# An inbox and an outbox as a runner from before versions left them (columns missing).
OLD_TABLES = """
CREATE TABLE inbox (id INTEGER PRIMARY KEY, session TEXT NOT NULL, message_id TEXT NOT NULL,
    chat_id TEXT NOT NULL, text TEXT NOT NULL DEFAULT '', status TEXT NOT NULL DEFAULT 'received',
    received_at REAL NOT NULL, UNIQUE (session, message_id));
CREATE TABLE outbox (id INTEGER PRIMARY KEY, chat_id TEXT NOT NULL, text TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', created_at REAL NOT NULL);
INSERT INTO inbox (session, message_id, chat_id, text, received_at)
    VALUES ('default', 'm1', '5511988887777@c.us', 'oi', 1);
INSERT INTO outbox (chat_id, text, created_at) VALUES ('5511988887777@c.us', 'olá', 1);
"""


def test_a_data_dir_from_before_versions_is_migrated_forward(tmp_path: Path) -> None:
    raw = connect(resolve(tmp_path))
    raw.executescript(OLD_TABLES)
    raw.commit()
    raw.close()
    store = Store(tmp_path)
    assert version_of(store.conn) == SCHEMA_VERSION
    conn = connect(resolve(tmp_path))
    inbox_columns = {r[1] for r in conn.execute("PRAGMA table_info(inbox)")}
    assert {"wa_key", "meta", "kind", "batch_id", "timestamp"} <= inbox_columns
    outbox = Outbox(conn)
    assert outbox.depth() == 1
    row = outbox.next_for("5511988887777@c.us")
    assert row is not None and row.text == "olá" and row.client_id  # an id given once
    assert Inbox(conn).pending()[0].text == "oi"
    outbox.enqueue([OutMessage("5511988887777@c.us", "tudo bem?")])
    store.close()


def test_data_from_a_newer_clinicflow_is_refused_in_one_line(tmp_path: Path) -> None:
    raw = connect(resolve(tmp_path))
    with raw:
        set_user_version(raw, SCHEMA_VERSION + 5)
    raw.close()
    with pytest.raises(SchemaTooNew) as caught:
        Store(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and "clinicflow mais novo" in message
    assert f"versão do esquema {SCHEMA_VERSION + 5}" in message


def test_migrating_twice_is_a_no_op(tmp_path: Path) -> None:
    conn = connect(resolve(tmp_path))
    assert migrate(conn, tmp_path) == 0
    assert migrate(conn, tmp_path) == SCHEMA_VERSION


OPEN = """
import sys
from clinicflow.engine import Engine
Engine.from_catalog(None, data_dir=sys.argv[1], native_threads=1).handle("5511900000001@c.us", "oi")
print("ok")
"""


def test_two_engines_opening_a_fresh_data_dir_at_once_both_start(tmp_path: Path) -> None:
    data = tmp_path / "fresh"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPEN, str(data)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err[-2000:]
        assert out.strip() == "ok"


def test_times_keep_their_precision_in_every_table(tmp_path: Path) -> None:
    # Unix times need a double: a 4-byte float rounds 1.8e9 to 128 s (PostgreSQL's `real`,
    # which a column declared after a DEFAULT 'text' once got).
    conn = connect(resolve(tmp_path))
    migrate(conn, tmp_path)
    moment = 1_796_044_208.748366
    outbox = Outbox(conn)
    outbox.enqueue([OutMessage("5511988887777@c.us", "olá")])
    with conn:
        conn.execute(
            "UPDATE outbox SET sent_at = ?, hold_until = ?, next_attempt_at = ?, created_at = ?",
            (moment, moment, moment, moment),
        )
    row = conn.execute(
        "SELECT sent_at, hold_until, next_attempt_at, created_at FROM outbox"
    ).fetchone()
    assert all(abs(float(value) - moment) < 1e-3 for value in row), row
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'clinicflow_schema'").fetchone():
        single = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND data_type = 'real'"
        ).fetchall()
        assert single == []  # every column declared REAL is a double


def test_column_types_translated_after_a_text_default() -> None:
    from clinicflow.database import translate

    sql = translate(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, kind TEXT DEFAULT 'a', at REAL, n INTEGER)",
        False,
    )
    assert "at DOUBLE PRECISION" in sql and "n BIGINT" in sql and "'a'" in sql
