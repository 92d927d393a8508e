"""Chat ids as pseudonyms in logs, and log values made printable (clinicflow.pseudonyms)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from clinicflow.pseudonyms import KEY_FILE, Pseudonyms, hide_numbers, printable, shape


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


@pytest.mark.parametrize(
    ("bad_id", "shown"),
    [
        ("+5511987650106@c.us", "+<13-digits>@c.us"),
        ("5511987650107:12@c.us", "<13-digits>:<2-digits>@c.us"),
        ("5511987650104@c.us\n", "<13-digits>@c.us\\x0a"),
        ("5511987650102", "<13-digits>"),
        ("../../etc/passwd@c.us", "../../etc/passwd@c.us"),
    ],
)
def test_the_shape_of_a_malformed_id_holds_no_digit_of_it(bad_id: str, shown: str) -> None:
    assert shape(bad_id) == shown


def test_numbers_are_hidden_but_pseudonyms_and_short_numbers_are_not() -> None:
    alias = Pseudonyms(b"k" * 16)
    pseudonyms = [alias(f"55119876501{n:02d}@c.us") for n in range(100)]
    text = "send to 5511987650101@c.us failed; lid 208898765432109@lid; tel +5511987650101"
    assert hide_numbers(text) == (
        "send to <13-digits>@c.us failed; lid <15-digits>@lid; tel <13-digits>"
    )
    assert hide_numbers("HTTP 503 after 1234567 ms at 2026-03-02T12:00:00") == (
        "HTTP 503 after 1234567 ms at 2026-03-02T12:00:00"
    )
    assert [hide_numbers(p) for p in pseudonyms] == pseudonyms
    assert hide_numbers("chat-123456789012") == "chat-123456789012"
