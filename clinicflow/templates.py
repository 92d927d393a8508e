"""Texts with placeholders: ``{nome}``, ``{nome|querida}``, ``{clinica.endereco}``.

Substitution is one regex pass over the catalog's *template*; the values put in are never
scanned again, so a patient called ``{clinica.nome}`` or ``%s`` is greeted literally. Nothing
here uses ``str.format`` or ``%``: patient text is never a format string.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

FACT_PREFIX = "clinica."

_PLACEHOLDER_RE = re.compile(
    r"\{\{|\}\}|\{\s*(?P<name>(?:clinica\.)?[^\W\d][\w]*)\s*(?:\|(?P<fallback>[^{}]*))?\}"
)
# Punctuation that must hug the word before it: "Oi , tudo" -> "Oi, tudo".
_CLOSING = ",.!?;:…)"
_SOFT = ",;:"


@dataclass(frozen=True)
class Placeholder:
    """One ``{...}`` in a template; ``offset`` is where its ``{`` is in the text."""

    name: str
    fallback: str | None
    offset: int

    @property
    def is_fact(self) -> bool:
        return self.name.startswith(FACT_PREFIX)

    @property
    def key(self) -> str:
        """The slot name, or the fact key without ``clinica.``."""
        return self.name[len(FACT_PREFIX) :] if self.is_fact else self.name


def placeholders(template: str) -> list[Placeholder]:
    """The placeholders of ``template`` in order (``{{`` and ``}}`` are literal braces)."""
    return [
        Placeholder(match["name"], match["fallback"], match.start())
        for match in _PLACEHOLDER_RE.finditer(template)
        if match["name"]
    ]


class _Gap:
    """Marks where a placeholder rendered to nothing, so the text around it is tidied."""


_GAP = _Gap()


def render(template: str, values: Mapping[str, str], facts: Mapping[str, str]) -> str:
    """Fill ``template`` with slot display values and clinic facts.

    Args:
        template: a catalog text.
        values: slot name -> display string (``""`` or absent means empty).
        facts: fact key (without ``clinica.``) -> text.

    Returns:
        The text; an empty slot shows its fallback, or disappears and the spaces and
        punctuation around it are tidied ("Obrigada, {nome}!" -> "Obrigada!").
    """
    parts: list[str | _Gap] = []
    last = 0
    for match in _PLACEHOLDER_RE.finditer(template):
        parts.append(template[last : match.start()])
        last = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
            continue
        name = match["name"]
        source = facts if name.startswith(FACT_PREFIX) else values
        value = source.get(name.removeprefix(FACT_PREFIX) if source is facts else name, "")
        if value:
            parts.append(value)
        elif match["fallback"] is not None and match["fallback"].strip():
            parts.append(match["fallback"].strip())
        else:
            parts.append(_GAP)
    parts.append(template[last:])
    return _join(parts)


def _join(parts: list[str | _Gap]) -> str:
    out = ""
    gap = False
    for part in parts:
        if isinstance(part, _Gap):
            gap = True
            continue
        if gap and part:
            out = _close_gap(out, part)
            gap = False
        else:
            out += part
    if gap:
        # A placeholder at the very end: "Até logo, {nome}" -> "Até logo".
        out = out.rstrip(" \t").rstrip(_SOFT).rstrip(" \t")
    return out


def _close_gap(left: str, right: str) -> str:
    spaced = left[-1:] in (" ", "\t") or right[:1] in (" ", "\t")
    left = left.rstrip(" \t")
    right = right.lstrip(" \t")
    at_line_start = left == "" or left.endswith("\n")
    if right[:1] and right[0] in _CLOSING:
        if at_line_start:
            # "{nome}, tudo bem?" -> "tudo bem?": the comma has nothing to follow.
            rest = right[1:].lstrip(" \t") if right[0] in _SOFT else right
            return left + rest[:1].upper() + rest[1:]
        if left[-1] in _SOFT:
            # "Oi, {nome}, tudo" / "Obrigada, {nome}!": keep only the stronger sign.
            left = left[:-1]
        return left + right
    if at_line_start or right.startswith("\n") or right == "":
        return left + right
    return left + (" " if spaced else "") + right
