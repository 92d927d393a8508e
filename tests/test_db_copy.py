"""`clinicflow db migrate` and `db copy`: a clinic moves to PostgreSQL, history and all."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from conftest import fresh_schema
from runner_harness import data_dir, embedder, prebuilt  # noqa: F401

from clinicflow.cli import main
from clinicflow.clock import ManualClock
from clinicflow.database import connect, resolve
from clinicflow.engine import Engine
from clinicflow.outbox import Outbox, OutMessage
from clinicflow.schema import SCHEMA_VERSION
from clinicflow.staff.accounts import Accounts

CHAT = "5511988887777@c.us"


@pytest.mark.usefixtures("backend")
def test_db_migrate_brings_the_schema_to_this_version(tmp_path: Path) -> None:
    first = CliRunner().invoke(main, ["db", "migrate", "--data", str(tmp_path)])
    assert first.exit_code == 0, first.output
    assert f"esquema 0 → {SCHEMA_VERSION}" in first.output
    again = CliRunner().invoke(main, ["db", "migrate", "--data", str(tmp_path)])
    assert again.exit_code == 0 and f"já na versão {SCHEMA_VERSION}" in again.output


def test_a_sqlite_clinic_is_copied_to_postgresql_and_its_conversation_goes_on(
    data_dir: Path, embedder: Any, postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CLINICFLOW_DATABASE_URL", raising=False)
    clock = ManualClock()
    engine = Engine.from_catalog(None, data_dir=data_dir, embedder=embedder, clock=clock)
    engine.handle(CHAT, "oi")
    engine.handle(CHAT, "quero marcar com a ginecologista")
    before = engine.state_of(CHAT)
    messages = engine.store.messages(CHAT)
    engine.close_resources()
    conn = connect(resolve(data_dir))  # runner and staff tables, as a runner leaves them
    Outbox(conn).enqueue([OutMessage(CHAT, "olá")])
    Accounts(conn).add("ana", "secretary", "uma senha longa o bastante")
    conn.close()

    target = fresh_schema(postgres_server)
    source = f"sqlite:///{data_dir / 'clinicflow.db'}"
    args = ["db", "copy", "--data", str(data_dir), "--from", source, "--to", target]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    lines = {line.split()[0]: line for line in first.output.splitlines()[1:-1]}
    assert f"{len(messages)} na origem" in lines["messages"]
    assert f"{len(messages)} copiadas" in lines["messages"]
    assert "1 copiadas" in lines["outbox"] and "1 copiadas" in lines["staff_accounts"]
    assert "1 copiadas" in lines["checkpoints"]
    again = CliRunner().invoke(main, args)  # idempotent: nothing added the second time
    assert again.exit_code == 0, again.output
    assert again.output.splitlines()[-1] == "0 linhas copiadas"

    moved = Engine.from_catalog(
        None, data_dir=data_dir, embedder=embedder, clock=clock, database_url=target
    )
    try:
        assert moved.store.is_postgres
        assert moved.state_of(CHAT) == before
        assert moved.store.messages(CHAT) == messages
        moved.handle(CHAT, "Ana Souza")  # the conversation continues where it was
        after = moved.store.messages(CHAT)
        assert after[: len(messages)] == messages
        assert after[len(messages)]["text"] == "Ana Souza"
        assert after[len(messages)]["id"] > messages[-1]["id"]  # the id sequence moved on
        assert moved.state_of(CHAT)["turns"] == before["turns"] + 1  # type: ignore[index]
    finally:
        moved.close_resources()
    pg = connect(resolve(data_dir, target))
    try:
        assert Accounts(pg).by_name("Ana") is not None
    finally:
        pg.close()

    # Both sides went on after the copy: the same ids now hold other rows. A copy again says
    # so and fails; nothing is mixed into the target.
    sqlite_side = Engine.from_catalog(None, data_dir=data_dir, embedder=embedder, clock=clock)
    try:
        sqlite_side.handle(CHAT, "Maria Lima")
    finally:
        sqlite_side.close_resources()
    clash = CliRunner().invoke(main, args)
    assert clash.exit_code == 1
    assert "em conflito" in clash.stdout and "não copiadas" in clash.stderr
    pg = connect(resolve(data_dir, target))
    try:
        texts = [r[0] for r in pg.execute("SELECT text FROM messages WHERE chat_id = ?", (CHAT,))]
    finally:
        pg.close()
    assert "Ana Souza" in texts and "Maria Lima" not in texts
