"""Stable pseudonyms for chat ids in logs, and log values made safe to print.

A log line must let an operator follow one conversation without carrying the patient's phone
number. :class:`Pseudonyms` turns a chat id into ``chat-<12 hex>``, a keyed hash (HMAC-SHA256):
the same id always gives the same pseudonym under one key, and nobody without the key can
test phone numbers against it. The key comes from the configuration or is generated once and
kept in the data directory (``log_key``, readable by the owner only).

:func:`printable` escapes what must never reach a log raw: control characters (a forged id
with a newline would forge a log line), bidi and other format characters, lone surrogates.

:func:`hide_numbers` replaces every run of eight or more digits (a phone number, a WhatsApp
id's user part, a lid) by ``<N-digits>``: the runner's log values and every line the log
formatters write go through it, so no log line carries a number even when an id is malformed
(``+5511987650106@c.us``, ``5511987650107:12@c.us``) or an error message echoes one. An id
WhatsApp never sends is logged by its pseudonym and its :func:`shape`
(``+<13-digits>@c.us``), which says what is wrong with it without the number.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import unicodedata
from pathlib import Path

KEY_FILE = "log_key"


class Pseudonyms:
    """Chat id → ``chat-<hash>`` under one key.

    Args:
        key: the secret; at least 16 bytes.
    """

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a pseudonym key needs at least 16 bytes")
        self._key = key

    @classmethod
    def from_data_dir(cls, data_dir: Path, key: str | None = None) -> Pseudonyms:
        """The configured ``key``, else the one kept in ``data_dir`` (created on first use)."""
        if key:
            return cls(hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest())
        path = Path(data_dir) / KEY_FILE
        try:
            stored = bytes.fromhex(path.read_text().strip())
        except (OSError, ValueError):
            stored = b""
        if len(stored) < 16:
            stored = secrets.token_bytes(32)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(stored.hex() + "\n")
        return cls(stored)

    def __call__(self, chat_id: str | None) -> str:
        """The pseudonym of ``chat_id`` (``-`` for none)."""
        if not chat_id:
            return "-"
        raw = chat_id.encode("utf-8", "surrogatepass")
        return "chat-" + hmac.new(self._key, raw, hashlib.sha256).hexdigest()[:12]


#: A run of digits long enough to be a phone number or an id (a pseudonym's hex is not one).
_NUMBER = re.compile(r"(?<![0-9A-Za-z])(?<!chat-)\+?[0-9]{8,}(?![0-9A-Za-z])")


def hide_numbers(text: str) -> str:
    """``text`` with every run of 8+ digits (a leading ``+`` too) shown as ``<N-digits>``."""
    return _NUMBER.sub(lambda m: f"<{len(m.group(0).lstrip('+'))}-digits>", text)


def shape(value: str, limit: int = 80) -> str:
    """What an id looks like without its digits: ``+5511987650106@c.us`` ->
    ``+<13-digits>@c.us``; every digit run is counted, whatever its length, and the result is
    :func:`printable`."""
    counted = re.sub(r"[0-9]+", lambda m: f"<{len(m.group(0))}-digits>", value[: limit * 4])
    return printable(counted, limit)


def printable(value: object, limit: int = 200) -> str:
    """``str(value)`` with control, format (bidi), private and surrogate characters escaped
    as ``\\xNN`` / ``\\uNNNN``, cut to ``limit`` characters (the rest is counted)."""
    text = str(value)
    cut = len(text) > limit
    out = []
    for ch in text[:limit]:
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            code = ord(ch)
            width = "x{:02x}" if code < 0x100 else "u{:04x}" if code < 0x10000 else "U{:08x}"
            out.append("\\" + width.format(code))
        else:
            out.append(ch)
    if cut:
        out.append(f"…(+{len(text) - limit} chars)")
    return "".join(out)


__all__ = ["KEY_FILE", "Pseudonyms", "hide_numbers", "printable", "shape"]
