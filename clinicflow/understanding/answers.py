"""Bare answers: a number picking a menu option, a yes or a no.

Exact and cheap; the cascade tries them before the model when the step expects them.
"""

from __future__ import annotations

import re

from clinicflow.text import normalize

_YES = {"sim", "claro", "isso", "aham", "uhum", "com certeza", "pode", "pode ser", "ok", "quero"}
_NO = {"nao", "nunca", "negativo", "de jeito nenhum", "nao quero"}
_YES_EMOJI = ("👍", "✅")
_NO_EMOJI = ("👎", "❌")
_NUMBER_RE = re.compile(r"^\s*(?:op[cç][aã]o\s*)?(\d{1,2})\s*[.)º°]?\s*$", re.IGNORECASE)
_KEYCAP_RE = re.compile(r"^\s*(\d)\ufe0f?\u20e3\s*$")


def numbered_choice(text: str) -> int | None:
    """``"2"``, ``"opção 2"``, ``"2)"`` or a keycap emoji → 2; anything else → None."""
    match = _NUMBER_RE.match(text) or _KEYCAP_RE.match(text)
    return int(match.group(1)) if match else None


def yes_no(text: str) -> bool | None:
    """A bare yes or no answer (colloquial forms, emojis); None when it is anything else."""
    stripped = text.strip()
    if stripped in _YES_EMOJI:
        return True
    if stripped in _NO_EMOJI:
        return False
    norm = normalize(text)
    if norm in _YES or norm == "sim sim":
        return True
    if norm in _NO:
        return False
    tokens = norm.split()
    if 0 < len(tokens) <= 4:
        if tokens[0] == "sim" and "nao" not in tokens:
            return True
        if tokens[0] == "nao" and "sim" not in tokens and "sei" not in tokens:
            return False
    return None
