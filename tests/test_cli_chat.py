"""``clinicflow chat``: it says when it resumes the terminal's conversation, ``/novo`` and
``--new`` start a fresh one, and an empty Enter is never sent as a message."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from clinicflow.cli import main


def _chat(data: Path, lines: list[str], *extra: str) -> str:
    result = CliRunner().invoke(
        main,
        ["chat", "--data", str(data), "--llm", "none", *extra],
        input="\n".join(lines) + "\n",
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return result.output


def _inbound(data: Path) -> list[str]:
    with sqlite3.connect(data / "clinicflow.db") as conn:
        rows = conn.execute(
            "SELECT text FROM messages WHERE chat_id = 'terminal@c.us' AND direction = 'in' "
            "ORDER BY id"
        ).fetchall()
    return [row[0] for row in rows]


def test_chat_resumes_says_so_and_starts_afresh_on_request(tmp_path: Path) -> None:
    first = _chat(tmp_path, ["oi", "", "   ", "/sair"])
    assert "Retomando" not in first
    assert _inbound(tmp_path) == ["oi"]  # the empty lines were not sent

    again = _chat(tmp_path, ["/novo", "oi", "/sair"])
    assert "Retomando a conversa anterior" in again and "/novo" in again
    assert "conversa nova" in again
    assert again.count("Eu sou a assistente virtual") == 1  # the new conversation introduces itself

    fresh = _chat(tmp_path, ["oi", "/sair"], "--new")
    assert "Retomando" not in fresh
    assert fresh.count("Eu sou a assistente virtual") == 1
