"""Phone numbers and WhatsApp ids, parsed in one place (clinicflow.phones)."""

from __future__ import annotations

import pytest

from clinicflow.phones import (
    chat_id_forms,
    display_phone,
    parse_phone,
    phone_of_chat_id,
    staff_chat_id,
    valid_country,
    well_formed_chat_id,
)


@pytest.mark.parametrize(
    ("text", "country", "expected"),
    [
        pytest.param("+55 (11) 99000-0001", "BR", "5511990000001", id="formatted"),
        pytest.param("5511990000001", "BR", "5511990000001", id="digits"),
        pytest.param("11 91111-2222", "BR", "5511911112222", id="no-country-code"),
        pytest.param("(31) 99999-0003", "BR", "5531999990003", id="area-code-in-brackets"),
        pytest.param("553199990003", "BR", "5531999990003", id="without-the-ninth-digit"),
        pytest.param("+1 415 555 2671", "BR", "14155552671", id="foreign"),
        pytest.param("912 345 678", "PT", "351912345678", id="portugal"),
        pytest.param("+55 (11) 1234", "BR", None, id="too-short"),
        pytest.param("12345", "BR", None, id="not-a-number"),
        pytest.param("abc", "BR", None, id="letters"),
        pytest.param("", "BR", None, id="empty"),
        pytest.param("5511990000001@c.us", "BR", None, id="a-chat-id"),
        pytest.param("9" * 50, "BR", None, id="huge"),
    ],
)
def test_parse_phone(text: str, country: str, expected: str | None) -> None:
    assert parse_phone(text, country) == expected


def test_parse_phone_tolerates_non_strings() -> None:
    assert parse_phone(None) is None  # type: ignore[arg-type]


def test_brazilian_mobiles_have_two_whatsapp_forms() -> None:
    forms = {"5531999990003@c.us", "553199990003@c.us"}
    assert chat_id_forms("5531999990003") == forms
    assert chat_id_forms("553199990003") == forms
    assert chat_id_forms("551133334444") == {"551133334444@c.us"}  # a landline: one form
    assert chat_id_forms("14155552671") == {"14155552671@c.us"}
    assert chat_id_forms("") == frozenset()


def test_phone_of_a_chat_id() -> None:
    assert phone_of_chat_id("5511987650003@c.us") == "5511987650003"
    assert phone_of_chat_id("553199990003@c.us") == "5531999990003"  # the modern number
    assert phone_of_chat_id("5511987650003:12@s.whatsapp.net") == "5511987650003"
    assert phone_of_chat_id("208898765432109@lid") is None
    assert phone_of_chat_id("120363041234567890@g.us") is None


def test_staff_chat_ids_and_display() -> None:
    assert staff_chat_id("+55 (11) 99000-0001") == "5511990000001@c.us"
    assert display_phone("5511987650003") == "+55 11 98765-0003"
    assert display_phone("14155552671") == "+1 415-555-2671"
    assert display_phone("123") == "+123"
    assert valid_country("br") and not valid_country("XX")


@pytest.mark.parametrize(
    ("chat_id", "ok"),
    [
        ("5511988887777@c.us", True),
        ("176369157804064@lid", True),
        ("5511988887777@s.whatsapp.net", True),
        ("120363041234567890@g.us", True),
        ("5511988887777-1612345678@g.us", True),
        ("status@broadcast", True),
        ("120363000000000000@newsletter", True),
        ("../../etc/passwd@c.us", False),
        ("' OR 1=1 --@c.us", False),
        ("5511988887777\n@c.us", False),
        ("5511\u202e988887777@c.us", False),
        ("1" * 245_000 + "@c.us", False),
        ("12@c.us", False),
        ("0511988887777@c.us", False),
        ("5511988887777@example.com", False),
        ("5511988887777", False),
        (None, False),
    ],
)
def test_well_formed_chat_ids(chat_id: str, ok: bool) -> None:
    assert well_formed_chat_id(chat_id) is ok
