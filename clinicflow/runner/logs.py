"""Log output of the runner: ``key=value`` lines (default) or one JSON object per line.

``CLINICFLOW_LOG_FORMAT=json`` gives every record as JSON with ``time``, ``level`` and
``logger``; the runner's own events (:func:`clinicflow.runner.metrics.log_event`) carry the
same fields
as their ``key=value`` line, because the JSON is read back from that line: whatever the line
shows (or hides), the JSON shows (or hides) too. Other libraries' records carry ``message``.

Both formats pass every line (message and traceback alike) through
:func:`clinicflow.pseudonyms.hide_numbers`: no phone number or WhatsApp id reaches the log,
whoever logged it.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from clinicflow.pseudonyms import hide_numbers

__all__ = [
    "LOG_FORMATS",
    "JsonFormatter",
    "TextFormatter",
    "configure_logging",
    "parse_event_line",
]

LOG_FORMATS = ("text", "json")
_TOKEN = re.compile(r'(\w[\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def parse_event_line(line: str) -> dict[str, Any] | None:
    """The fields of an ``event=<name> key=value ...`` line, or None for any other text.

    Quoted values are unescaped; unquoted numbers become numbers, ``True``/``False`` booleans.
    """
    if not line.startswith("event="):
        return None
    fields: dict[str, Any] = {}
    position = 0
    for match in _TOKEN.finditer(line):
        if line[position : match.start()].strip():
            return None  # not a line log_event wrote
        key, raw = match.group(1), match.group(2)
        fields[key] = _value(raw)
        position = match.end()
    return fields if not line[position:].strip() else None


def _value(raw: str) -> Any:
    if raw.startswith('"') and raw.endswith('"') and len(raw) >= 2:
        return re.sub(r"\\[\\\"n]", lambda m: _UNESCAPE[m.group(0)], raw[1:-1])
    if _NUMBER.fullmatch(raw):
        return float(raw) if "." in raw else int(raw)
    if raw in ("True", "False"):
        return raw == "True"
    return raw


class JsonFormatter(logging.Formatter):
    """One JSON object per record (see the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        message = hide_numbers(record.getMessage())
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        fields = parse_event_line(message)
        if fields is None:
            out["message"] = message
        else:
            out.update({k: v for k, v in fields.items() if k not in out})
        if record.exc_info:
            out["exception"] = hide_numbers(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time LEVEL message`` lines, numbers hidden (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return hide_numbers(super().format(record))


def configure_logging(fmt: str = "text", *, stream: Any = None) -> logging.Handler:
    """Send every log record to ``stream`` (stderr) in ``fmt`` (``text`` or ``json``).

    Returns:
        The handler installed on the root logger (replacing any earlier one of ours).
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.set_name("clinicflow")
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "clinicflow"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    for noisy in ("transitions", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return handler
