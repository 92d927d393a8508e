"""Phone numbers and WhatsApp ids: the one place where a number is parsed, checked and shown.

Parsing and validation come from ``phonenumbers`` (Google's libphonenumber), with the clinic's
country for numbers written without a country code::

    parse_phone("+55 (11) 99000-0001")     -> "5511990000001"   (E.164 digits, no "+")
    parse_phone("11 91111-2222")            -> "5511911112222"   (country: BR by default)
    parse_phone("12345")                    -> None              (not a valid number)
    chat_id_forms("5531999990003")          -> {"5531999990003@c.us", "553199990003@c.us"}
    display_phone("5511987650003")          -> "+55 11 98765-0003"

Brazil added a ninth digit to mobile numbers (2012-2016), but WhatsApp kept the accounts
created before it: a mobile written today as ``55 31 9xxxx-xxxx`` may still chat as
``553199990003@c.us``. :func:`chat_id_forms` gives both forms, so a person is matched on
either. WhatsApp ids themselves are checked by :func:`well_formed_chat_id`.
"""

from __future__ import annotations

import re

import phonenumbers

DEFAULT_COUNTRY = "BR"

# WhatsApp ids: a user part of digits (sane lengths) and a known server.
_CHAT_ID = re.compile(
    r"(?:[1-9][0-9]{5,19}@(?:c\.us|s\.whatsapp\.net|lid|broadcast|newsletter)"
    r"|[1-9][0-9]{5,19}(?:-[0-9]{6,12})?@g\.us"
    r"|status@broadcast)"
)
# A Brazilian mobile without the ninth digit: 55, a two-digit area code, 8 digits from 6-9.
_BR_OLD_MOBILE = re.compile(r"55([1-9][0-9])([6-9][0-9]{7})")
_BR_NEW_MOBILE = re.compile(r"55([1-9][0-9])9([6-9][0-9]{7})")


def well_formed_chat_id(value: object) -> bool:
    """True for a WhatsApp id of a known shape (``digits@c.us``, ``digits@lid``, ...).

    Anything else (paths, SQL, control or bidi characters, huge strings) is false.
    """
    return isinstance(value, str) and len(value) <= 64 and _CHAT_ID.fullmatch(value) is not None


def parse_phone(text: str, country: str = DEFAULT_COUNTRY) -> str | None:
    """The E.164 digits (no ``+``) of a phone number written in any usual way, if valid.

    Args:
        text: ``"+55 (11) 99000-0001"``, ``"5511990000001"``, ``"11 91111-2222"``...
        country: ISO 3166 code used when the number has no country code (the clinic's).

    Returns:
        The digits of a valid number, or None (not a number, or not a valid one).
    """
    if not isinstance(text, str):
        return None
    text = text.strip()
    if not text or len(text) > 40 or "@" in text:
        return None
    digits = re.sub(r"\D", "", text)
    if not digits:
        return None
    candidates = [text] if text.startswith("+") else [text, "+" + digits]
    for candidate in candidates:
        try:
            number = phonenumbers.parse(candidate, country.upper())
        except phonenumbers.NumberParseException:
            continue
        if phonenumbers.is_valid_number(number):
            return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    return _br_old_mobile(digits)


def _br_old_mobile(digits: str) -> str | None:
    """A Brazilian mobile still in the eight-digit form WhatsApp keeps, as the modern number."""
    old = _BR_OLD_MOBILE.fullmatch(digits)
    if old is None:
        return None
    modern = f"55{old.group(1)}9{old.group(2)}"
    return modern if parse_phone("+" + modern) == modern else None


def chat_id_forms(phone: str) -> frozenset[str]:
    """The ``@c.us`` ids a person with this phone (E.164 digits) may write from."""
    digits = re.sub(r"\D", "", phone or "")
    if not digits:
        return frozenset()
    forms = {digits}
    new = _BR_NEW_MOBILE.fullmatch(digits)
    if new is not None:
        forms.add(f"55{new.group(1)}{new.group(2)}")
    old = _BR_OLD_MOBILE.fullmatch(digits)
    if old is not None:
        forms.add(f"55{old.group(1)}9{old.group(2)}")
    return frozenset(f"{form}@c.us" for form in forms)


def phone_of_chat_id(chat_id: str) -> str | None:
    """The phone number (E.164 digits) of a ``@c.us`` id, or None (``@lid``, groups...)."""
    if not isinstance(chat_id, str):
        return None
    user, _, server = chat_id.partition("@")
    user = user.split(":", 1)[0]
    if server not in ("c.us", "s.whatsapp.net") or not user.isdigit():
        return None
    return parse_phone("+" + user) or user


def staff_chat_id(phone: str) -> str:
    """Where a message to a staff member goes: ``<E.164 digits>@c.us``."""
    digits = parse_phone(phone) or re.sub(r"\D", "", phone or "")
    return f"{digits}@c.us"


def display_phone(phone: str) -> str:
    """A phone number as people read it: ``+55 11 98765-0003``."""
    digits = re.sub(r"\D", "", phone or "")
    try:
        number = phonenumbers.parse("+" + digits, None)
    except phonenumbers.NumberParseException:
        return f"+{digits}"
    if not phonenumbers.is_possible_number(number):
        return f"+{digits}"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def valid_country(code: str) -> bool:
    """True for a region code ``phonenumbers`` knows (``BR``, ``PT``, ``US``...)."""
    return isinstance(code, str) and code.upper() in phonenumbers.SUPPORTED_REGIONS


__all__ = [
    "DEFAULT_COUNTRY",
    "chat_id_forms",
    "display_phone",
    "parse_phone",
    "phone_of_chat_id",
    "staff_chat_id",
    "valid_country",
    "well_formed_chat_id",
]
