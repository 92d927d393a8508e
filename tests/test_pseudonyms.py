"""Chat ids as pseudonyms in logs, and log values made printable (clinicflow.pseudonyms)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from clinicflow.pseudonyms import KEY_FILE, Pseudonyms, printable


def test_the_key_is_made_once_and_kept(tmp_path: Path) -> None:
    first = Pseudonyms.from_data_dir(tmp_path)
    key = tmp_path / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    again = Pseudonyms.from_data_dir(tmp_path)
    chat = "5511987650003@c.us"
    assert first(chat) == again(chat) and first(chat).startswith("chat-")
    assert "5511987650003" not in first(chat) and first(chat) != first("5511987650004@c.us")
    assert first(None) == "-"


def test_a_configured_key_wins_and_changes_the_pseudonyms(tmp_path: Path) -> None:
    chat = "208898765432109@lid"
    one = Pseudonyms.from_data_dir(tmp_path, "segredo-da-clinica")
    two = Pseudonyms.from_data_dir(tmp_path / "other", "segredo-da-clinica")
    assert one(chat) == two(chat) != Pseudonyms.from_data_dir(tmp_path)(chat)
    assert not (tmp_path / "other" / KEY_FILE).exists()
    with pytest.raises(ValueError):
        Pseudonyms(b"short")


def test_a_broken_key_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_text("not hex")
    assert Pseudonyms.from_data_dir(tmp_path)("x@c.us").startswith("chat-")
    assert len(bytes.fromhex((tmp_path / KEY_FILE).read_text().strip())) == 32


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("a\nb", "a\\x0ab"),
        ("x\x00y\x1b[31m", "x\\x00y\\x1b[31m"),
        ("55\u202e11", "55\\u202e11"),
        ("oi \ud83d", "oi \\ud83d"),
        ("Clínica 💜", "Clínica 💜"),
    ],
)
def test_printable(value: str, shown: str) -> None:
    assert printable(value) == shown


def test_printable_cuts_long_values() -> None:
    assert printable("1" * 1000, 10) == "1" * 10 + "…(+990 chars)"
