"""How many: the ``number`` slot parser, digits or pt-BR number words, within bounds.

Private to :mod:`clinicflow.slots`. Asked, a message with one number is the answer; unasked,
only an age written as an age ("tenho 42 anos") fills a slot named like ``idade``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from clinicflow._slot_message import _Message, _wordset
from clinicflow.model import Slot
from clinicflow.text import fold

_UNITS = {"zero": 0, "um": 1, "uma": 1, "dois": 2, "duas": 2, "tres": 3, "quatro": 4}
_UNITS |= {"cinco": 5, "seis": 6, "sete": 7, "oito": 8, "nove": 9}
_TEENS = {"dez": 10, "onze": 11, "doze": 12, "treze": 13, "catorze": 14, "quatorze": 14}
_TEENS |= {"quinze": 15, "dezesseis": 16, "dezasseis": 16, "dezessete": 17, "dezassete": 17}
_TEENS |= {"dezoito": 18, "dezenove": 19, "dezanove": 19}
_TENS = {"vinte": 20, "trinta": 30, "quarenta": 40, "cinquenta": 50, "sessenta": 60}
_TENS |= {"setenta": 70, "oitenta": 80, "noventa": 90}
_HUNDREDS = {"cem": 100, "cento": 100} | {
    stem + ending: 100 * n
    for n, stem in enumerate(
        ("duzent", "trezent", "quatrocent", "quinhent", "seiscent", "setecent", "oitocent"), 2
    )
    for ending in ("os", "as")
}
_HUNDREDS |= {"novecentos": 900, "novecentas": 900}
# Rank: a compound number goes strictly down ("cento e vinte e três"); teens rank like tens.
_NUMBER_WORDS: dict[str, tuple[int, int]] = {w: (v, 1) for w, v in _UNITS.items()}
_NUMBER_WORDS |= {w: (v, 2) for w, v in (_TEENS | _TENS).items()}
_NUMBER_WORDS |= {w: (v, 3) for w, v in _HUNDREDS.items()}
# "um"/"uma" alone are usually articles ("tenho uma dúvida"); they count as a number only
# at the end of the message or before one of these count words.
_COUNT_NOUNS = _wordset(
    "ano anos mes meses semana semanas dia dias vez vezes filho filhos filha filhas kg quilo "
    "quilos parto partos gestacao gestacoes gravidez cigarro cigarros metro metros"
)
_DIGITS_RE = re.compile(r"(\d{1,15})(?:([.,])(\d{1,15}))?([a-z]*)")


def _digit_value(token: str) -> int | float | None:
    m = _DIGITS_RE.fullmatch(token)
    if not m:
        return None
    whole, sep, frac, _unit = m.groups()
    if not sep:
        return int(whole)
    if sep == "." and len(frac) == 3:
        return int(whole + frac)  # 1.650 is a thousands separator in pt-BR
    return float(f"{whole}.{frac}")


def _numbers(tokens: Sequence[str]) -> list[tuple[int, int, int | float]]:
    """Numbers in normalised words as (start, end, value): digits or pt-BR words 0–999."""
    out: list[tuple[int, int, int | float]] = []
    i = 0
    while i < len(tokens):
        value = _digit_value(tokens[i])
        if value is not None:
            out.append((i, i + 1, value))
            i += 1
            continue
        if tokens[i] not in _NUMBER_WORDS:
            i += 1
            continue
        total, rank = _NUMBER_WORDS[tokens[i]]
        end = i + 1
        while end < len(tokens):
            skip = 1 if tokens[end] == "e" else 0  # tolerate "vinte dois"
            nxt = tokens[end + skip] if end + skip < len(tokens) else ""
            if nxt not in _NUMBER_WORDS or nxt == "zero" or _NUMBER_WORDS[nxt][1] >= rank:
                break
            total += _NUMBER_WORDS[nxt][0]
            rank = _NUMBER_WORDS[nxt][1]
            end += skip + 1
        article = end == i + 1 and tokens[i] in ("um", "uma")
        if not article or end == len(tokens) or tokens[end] in _COUNT_NOUNS:
            out.append((i, end, total))
        i = end
    return out


def _in_bounds(slot: Slot, value: float) -> bool:
    if not math.isfinite(value):
        return False
    return (slot.min is None or value >= slot.min) and (slot.max is None or value <= slot.max)


def _parse_number(slot: Slot, msg: _Message) -> int | float | None:
    values = {value for _, _, value in _numbers(msg.tokens)}
    if len(values) != 1:
        return None
    value = values.pop()
    return value if _in_bounds(slot, value) else None


_AGE_LEADS = frozenset({"tenho", "com", "fiz", "faco", "completei", "completo", "idade"})


def _unasked_age(slot: Slot, msg: _Message) -> int | float | None:
    """ "tenho 42 anos", "Ana, 32 anos": only for a slot named like ``idade``."""
    if "idade" not in fold(slot.name) and fold(slot.name) != "age":
        return None
    values = set()
    for tokens in msg.clauses:
        for start, end, value in _numbers(tokens):
            glued = end == start + 1 and tokens[start].endswith("anos")  # "42anos"
            if not glued and tokens[end : end + 1] != ["anos"]:
                continue
            after = end if glued else end + 1
            if tokens[after : after + 1] in (["atras"], ["que"]):
                continue  # "2 anos atrás", "2 anos que uso": a duration, not an age
            if start == 0 or tokens[start - 1] in _AGE_LEADS:
                values.add(value)
    if len(values) != 1:
        return None
    value = values.pop()
    return value if _in_bounds(slot, value) else None
