"""Backups: an online copy while the engine writes, restored and the conversation continued."""
# ruff: noqa: F811 - pytest fixtures are imported from runner_harness by name

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from runner_harness import data_dir, embedder, prebuilt  # noqa: F401 - fixtures

from clinicflow.backup import MANIFEST, BackupError, DataDirLock, backup, in_use, restore
from clinicflow.cli import main
from clinicflow.clock import ManualClock
from clinicflow.engine import Engine
from clinicflow.loader import load_catalog
from clinicflow.storage import DB_NAME

CHAT = "5511977776666@c.us"
NOW = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def engine_on(folder: Path, embedder: Any) -> Engine:
    return Engine(load_catalog(), data_dir=folder, embedder=embedder, clock=ManualClock(NOW))


def test_restore_and_continue_the_conversation(
    data_dir: Path, tmp_path: Path, embedder: Any
) -> None:
    engine = engine_on(data_dir, embedder)
    engine.handle(CHAT, "Oi! Vi o anúncio do DIU no Instagram")
    engine.handle(CHAT, "Me chamo Júlia")
    before = engine.state_of(CHAT)
    assert before is not None
    # Online: the engine is open (and has written) while the copy is made.
    manifest = backup(data_dir, tmp_path / "copy", now=NOW)
    engine.handle(CHAT, "essa mensagem veio depois da cópia")
    engine.close_resources()

    written = json.loads((tmp_path / "copy" / MANIFEST).read_text("utf-8"))
    assert written["created_at"] == "2026-03-02T15:00:00.000+00:00"
    assert written["database"]["tables"]["conversations"] == 1
    assert any("CREATE TABLE" in sql and "messages" in sql for sql in written["database"]["schema"])
    assert "rebuilt" in written["index"]
    assert manifest.tables["messages"] == written["database"]["tables"]["messages"]

    restored = tmp_path / "restored"
    restore(tmp_path / "copy", restored)
    again = engine_on(restored, embedder)
    try:
        assert again.state_of(CHAT) == before
        texts = [m["text"] for m in again.store.messages(CHAT)]
        assert "Me chamo Júlia" in texts and "essa mensagem veio depois da cópia" not in texts
        result = again.handle(CHAT, "quanto custa a consulta?")
        assert result.replies and result.script_id == before["script_id"]
        assert result.slots.get("nome") == before["slots"].get("nome")
    finally:
        again.close_resources()


def _tiny_data(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(folder / DB_NAME)
    with conn:
        conn.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, text TEXT)")
        conn.execute("INSERT INTO messages (text) VALUES ('oi')")
    conn.close()


def test_backup_refuses_a_destination_that_is_not_empty(tmp_path: Path) -> None:
    _tiny_data(tmp_path / "data")
    (tmp_path / "dest").mkdir()
    (tmp_path / "dest" / "something").write_text("x")
    with pytest.raises(BackupError, match="não está vazia"):
        backup(tmp_path / "data", tmp_path / "dest", now=NOW)
    with pytest.raises(BackupError, match="não há banco"):
        backup(tmp_path / "nothing", tmp_path / "dest2", now=NOW)


def test_restore_refuses_a_data_dir_in_use_or_not_empty(tmp_path: Path) -> None:
    _tiny_data(tmp_path / "data")
    backup(tmp_path / "data", tmp_path / "copy", now=NOW)
    target = tmp_path / "target"
    _tiny_data(target)
    with pytest.raises(BackupError, match="--force"):
        restore(tmp_path / "copy", target)
    with DataDirLock(target):
        assert in_use(target)
        with pytest.raises(BackupError, match="em uso"):
            restore(tmp_path / "copy", target, force=True)
    assert not in_use(target)
    restore(tmp_path / "copy", target, force=True)


def test_restore_refuses_a_damaged_copy(tmp_path: Path) -> None:
    _tiny_data(tmp_path / "data")
    backup(tmp_path / "data", tmp_path / "copy", now=NOW)
    with (tmp_path / "copy" / DB_NAME).open("ab") as handle:
        handle.write(b"tampered")
    with pytest.raises(BackupError, match="não confere"):
        restore(tmp_path / "copy", tmp_path / "target")
    (tmp_path / "copy" / MANIFEST).write_text("{}")
    with pytest.raises(BackupError, match="não é uma cópia"):
        restore(tmp_path / "copy", tmp_path / "target")


def test_cli_backup_and_restore(tmp_path: Path) -> None:
    _tiny_data(tmp_path / "data")
    runner = CliRunner()
    made = runner.invoke(main, ["backup", str(tmp_path / "copy"), "--data", str(tmp_path / "data")])
    assert made.exit_code == 0 and "1 linhas" in made.output, made.output
    back = runner.invoke(main, ["restore", str(tmp_path / "copy"), "--data", str(tmp_path / "new")])
    assert back.exit_code == 0, back.output
    again = runner.invoke(
        main, ["restore", str(tmp_path / "copy"), "--data", str(tmp_path / "new")]
    )
    assert again.exit_code == 1 and "não está vazia" in again.output
    conn = sqlite3.connect(tmp_path / "new" / DB_NAME)
    assert conn.execute("SELECT text FROM messages").fetchall() == [("oi",)]
    conn.close()


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        pytest.param(lambda m: m.pop("database"), "falta o campo 'database'", id="no-database"),
        pytest.param(lambda m: m.pop("created_at"), "falta o campo 'created_at'", id="no-date"),
        pytest.param(
            lambda m: m["database"].pop("sha256"),
            "falta o campo 'database.sha256'",
            id="no-checksum",
        ),
        pytest.param(
            lambda m: m["database"].update(bytes="muitos"),
            "o campo 'database.bytes' de manifest.json está com valor errado",
            id="wrong-kind",
        ),
    ],
)
def test_a_broken_manifest_says_which_field_in_words(tmp_path: Path, edit: Any, said: str) -> None:
    _tiny_data(tmp_path / "data")
    backup(tmp_path / "data", tmp_path / "copy", now=NOW)
    path = tmp_path / "copy" / MANIFEST
    manifest = json.loads(path.read_text("utf-8"))
    edit(manifest)
    path.write_text(json.dumps(manifest), "utf-8")
    result = CliRunner().invoke(
        main, ["restore", str(tmp_path / "copy"), "--data", str(tmp_path / "new")]
    )
    assert result.exit_code != 0
    [line] = result.output.strip().splitlines()
    assert line.startswith("Erro: ") and "não é uma cópia do clinicflow" in line and said in line
    path.write_text("{não é json", "utf-8")
    result = CliRunner().invoke(
        main, ["restore", str(tmp_path / "copy"), "--data", str(tmp_path / "new")]
    )
    assert "manifest.json não é um JSON válido" in result.output
