"""Slot values from a patient's free text: parse one, extract several, display, validate.

Pure functions over :class:`~clinicflow.model.Slot`; no I/O and no clock (``today`` is passed
in). They run on every turn, so each message is tokenised once (:class:`_Message`) and the
phrase tables are built at import or cached per slot's options.

This module holds the public API and the dispatch by slot type; the parsers live in private
modules by concept: ``_slot_contacts`` (name, phone, e-mail), ``_slot_dates`` (date, period),
``_slot_numbers`` (number), ``_slot_choices`` (yes_no, choice), over the shared tokeniser and
phrase matching in ``_slot_message``.

Stored values are JSON-plain (:data:`SlotValue`): ``str`` for text, name, phone (``55`` + DDD +
number), email (lower-case), date (ISO), period (``manhã``/``tarde``/``noite``/``qualquer``) and
choice (the option's ``value``; a ``multiple`` choice: the list of values, in the options'
order); ``bool`` for yes_no; ``int`` or ``float`` for number.

:func:`parse` is lenient: the bot has just asked for that slot. :func:`extract` also picks up
answers given out of order, but for slots nobody asked about it only takes values that carry
their own marker ("me chamo…", "de manhã", an e-mail, "12/03"), so it never invents.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Sequence
from typing import TypeAlias

from clinicflow._slot_choices import _parse_choice, _parse_yes_no, option_number
from clinicflow._slot_contacts import (
    _EMAIL_FULL_RE,
    _national_ok,
    _parse_email,
    _parse_name,
    _parse_phone,
)
from clinicflow._slot_dates import _parse_date, _parse_period
from clinicflow._slot_message import _Message
from clinicflow._slot_numbers import _in_bounds, _parse_number, _unasked_age
from clinicflow.model import Slot
from clinicflow.text import has_letters_or_digits

__all__ = [
    "PERIODS",
    "TEXT_MAX_CHARS",
    "SlotValue",
    "display",
    "extract",
    "option_number",
    "parse",
    "validate",
]

SlotValue: TypeAlias = str | bool | int | float | list[str]

#: The stored values of a ``period`` slot.
PERIODS: tuple[str, ...] = ("manhã", "tarde", "noite", "qualquer")
#: A ``text`` answer is stored stripped and cut at this many characters.
TEXT_MAX_CHARS = 500


# --- text -------------------------------------------------------------------------------------


def _parse_text(msg: _Message) -> str | None:
    text = msg.raw.strip()
    return text[:TEXT_MAX_CHARS].rstrip() if has_letters_or_digits(text) else None


# --- public API -------------------------------------------------------------------------------


def _parse(slot: Slot, msg: _Message, today: dt.date, strict: bool) -> SlotValue | None:
    kind = slot.type
    if kind == "text":
        return None if strict else _parse_text(msg)
    if kind == "name":
        return _parse_name(msg, strict)
    if kind == "phone":
        return _parse_phone(msg)
    if kind == "email":
        return _parse_email(msg)
    if kind == "date":
        return _parse_date(msg, today, strict)
    if kind == "period":
        return _parse_period(msg, strict)
    if kind == "choice":
        return _parse_choice(slot, msg, strict)
    if kind == "yes_no":
        return None if strict else _parse_yes_no(msg)
    if kind == "number":
        return _unasked_age(slot, msg) if strict else _parse_number(slot, msg)
    return None


def parse(slot: Slot, text: str, today: dt.date) -> SlotValue | None:
    """The value for ``slot`` in the patient's answer to its question, or None.

    Args:
        slot: The slot the bot has just asked for.
        text: The patient's message, as received (emojis, no accents, abbreviations...).
        today: The clinic's local date, for "amanhã", "sexta" and dates without a year.

    Returns:
        The value in its stored form (see the module docstring), or None when the message
        holds no value or more than one (ambiguous). Never raises on any string.
    """
    return _parse(slot, _Message(text), today, strict=False)


def extract(
    slots: Sequence[Slot], text: str, today: dt.date, expecting: str | None
) -> dict[str, SlotValue]:
    """Every slot value found in one message, including answers given out of order.

    Args:
        slots: The slots that may be filled (usually the script's still-empty slots).
        text: The patient's message.
        today: The clinic's local date.
        expecting: The name of the slot the bot has just asked for (parsed leniently, as by
            :func:`parse`), or None.

    Returns:
        Slot name to value. Slots not asked about are filled only from explicit forms: a name
        after "sou a / me chamo / meu nome é", a period word, an e-mail, a phone, a date
        written as a date, a choice's label or synonym, an age as "tenho 42 anos". Two unasked
        slots of one type (or one of the asked slot's type) are left empty: never a guess.
    """
    msg = _Message(text)
    asked = next((slot for slot in slots if slot.name == expecting), None)
    out: dict[str, SlotValue] = {}
    if asked is not None:
        value = _parse(asked, msg, today, strict=False)
        if value is not None:
            out[asked.name] = value
    by_type: dict[str, list[tuple[Slot, SlotValue]]] = {}
    for slot in slots:
        if slot is asked or slot.name in out:
            continue
        value = _parse(slot, msg, today, strict=True)
        if value is not None:
            by_type.setdefault(slot.type, []).append((slot, value))
    for kind, filled in by_type.items():
        clash = asked is not None and asked.type == kind
        if kind != "choice" and (len(filled) > 1 or clash):
            continue
        for slot, value in filled:
            out[slot.name] = value
    return out


def _number_text(value: float) -> str:
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return format(value, ".10g").replace(".", ",")


def display(slot: Slot, value: SlotValue) -> str:
    """The value as a template shows it to the patient.

    A choice shows its option's label, a date ``dd/mm/aaaa``, a yes_no ``sim``/``não``, a
    number without a trailing ``.0`` (decimal comma: ``1,65``); the rest as stored.
    """
    if isinstance(value, bool):
        return "sim" if value else "não"
    if isinstance(value, list):
        labels = [display(slot, item) for item in value]
        return (
            " e ".join([", ".join(labels[:-1]), labels[-1]]) if len(labels) > 1 else "".join(labels)
        )
    if slot.type == "choice":
        return next((o.label for o in slot.options if o.value == value), str(value))
    if slot.type == "date" and isinstance(value, str):
        try:
            return dt.date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            return value
    if isinstance(value, int | float) and math.isfinite(value):
        return _number_text(value)
    return str(value)


_ISO_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_NAME_VALUE_RE = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*(?: [^\W\d_]+(?:['’-][^\W\d_]+)*)*")


def _valid_date_text(value: str) -> bool:
    if not _ISO_DATE_RE.fullmatch(value):
        return False
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


_STRING_CHECKS: dict[str, Callable[[Slot, str], bool]] = {
    "text": lambda _, v: has_letters_or_digits(v) and len(v) <= TEXT_MAX_CHARS,
    "name": lambda _, v: len(v) <= 120 and bool(_NAME_VALUE_RE.fullmatch(v)),
    "phone": lambda _, v: v.isascii() and v.isdigit() and v[:2] == "55" and _national_ok(v[2:]),
    "email": lambda _, v: v == v.lower() and bool(_EMAIL_FULL_RE.fullmatch(v)) and ".." not in v,
    "date": lambda _, v: _valid_date_text(v),
    "period": lambda _, v: v in PERIODS,
    "choice": lambda slot, v: any(option.value == v for option in slot.options),
}


def validate(slot: Slot, value: object) -> bool:
    """Whether ``value`` (e.g. from the LLM) is a well-formed stored value for ``slot``.

    Checks the stored form exactly: type, shape (ISO date, ``55`` phone, lower-case e-mail,
    one of :data:`PERIODS`), bounds for numbers, and that a choice names an option's value.
    """
    if slot.type == "yes_no":
        return isinstance(value, bool)
    if slot.type == "number":
        return (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and _in_bounds(slot, value)
        )
    check = _STRING_CHECKS.get(slot.type)
    if slot.multiple and isinstance(value, list):
        return bool(value) and all(
            isinstance(v, str) and _STRING_CHECKS["choice"](slot, v) for v in value
        )
    return isinstance(value, str) and check is not None and check(slot, value)
